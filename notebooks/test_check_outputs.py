"""Tests of check_outputs.py: each kind of failure is caught, a clean notebook passes.
    python3 -m unittest notebooks/test_check_outputs.py   (also run by `cargo test`)
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_outputs import problems_in  # noqa: E402


def notebook(*cells):
    return {"cells": list(cells), "nbformat": 4, "nbformat_minor": 5, "metadata": {}}


def code(source, *outputs, count=1):
    return {"cell_type": "code", "source": source, "execution_count": count, "outputs": list(outputs)}


def stream(name, text):
    return {"output_type": "stream", "name": name, "text": text}


def display(kind, text):
    return {"output_type": "display_data", "data": {kind: text}, "metadata": {}}


class CheckOutputs(unittest.TestCase):
    def found(self, nb):
        return list(problems_in(nb))

    def test_a_clean_notebook_passes(self):
        nb = notebook(
            {"cell_type": "markdown", "source": "# Error: in prose is not an output"},
            code("let x = 1;", stream("stdout", "loss 0.5\nno errors: 0\n")),
            code("show()", display("text/html", "<table><tr><td>Error rate</td></tr></table>")),
        )
        self.assertEqual(self.found(nb), [])

    def test_a_cell_that_did_not_run(self):
        found = self.found(notebook(code("run()", count=None)))
        self.assertEqual(len(found), 1)
        self.assertIn("did not run", found[0])

    def test_an_error_output(self):
        err = {"output_type": "error", "ename": "Error", "evalue": "boom", "traceback": []}
        self.assertIn("boom", self.found(notebook(code("f()?", err)))[0])

    def test_stderr(self):
        self.assertIn("wrote to stderr", self.found(notebook(code("f()", stream("stderr", "panicked at x"))))[0])

    def test_an_error_line_on_stdout(self):
        out = stream("stdout", ["step 1\n", "Error: no such file runs/x/metrics.jsonl\n"])
        found = self.found(notebook(code("History::load(\"x\")?", out)))
        self.assertEqual(len(found), 1)
        self.assertIn("Error: no such file", found[0])

    def test_an_error_in_a_display(self):
        found = self.found(notebook(code("r", display("text/plain", "Error: the table is empty"))))
        self.assertIn("shows an error", found[0])

    def test_a_figure_not_drawn(self):
        html = "<p>could not draw `lr_curves`: no data</p>"
        found = self.found(notebook(code("report.plot(\"lr_curves\")", display("text/html", html))))
        self.assertEqual(len(found), 1)
        self.assertIn("could not draw `lr_curves`", found[0])

    def test_the_command_line_exits_1_on_a_problem_and_0_without(self):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_outputs.py")
        with tempfile.TemporaryDirectory() as d:
            good, bad = os.path.join(d, "good.ipynb"), os.path.join(d, "bad.ipynb")
            json.dump(notebook(code("x", stream("stdout", "ok\n"))), open(good, "w"))
            json.dump(notebook(code("x", stream("stdout", "Error: x\n"))), open(bad, "w"))
            ok = subprocess.run([sys.executable, script, good], capture_output=True, text=True)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            ko = subprocess.run([sys.executable, script, good, bad], capture_output=True, text=True)
            self.assertEqual(ko.returncode, 1)
            self.assertIn("bad.ipynb", ko.stderr)


if __name__ == "__main__":
    unittest.main()

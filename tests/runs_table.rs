//! The analysis' runs table and task metadata: the real paper runs, and every bad input.

mod common;

use std::path::{Path, PathBuf};

use common::{shared_data, write};
use encoderlab::data::Registry;
use encoderlab::stats::runs::{builtin_meta, check_meta, read_meta, read_runs};

const HEADER: &str = "model,objective,family,dataset,learning_rate,seed,split,metric,score,status\n";

#[test]
fn reads_the_paper_runs() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let path = data.join("paper_runs/runs.csv");
    let runs = read_runs(&path)?;
    assert_eq!(runs.len(), 190);
    assert!(runs.iter().all(|r| r.score.is_finite()));
    let meta_path = data.join("paper_runs/meta.csv");
    let meta = read_meta(&meta_path)?;
    assert_eq!(meta["sst2"].chance_score, 0.5092);
    check_meta(&runs, &meta, &path, &meta_path)?;
    let outlier = runs
        .iter()
        .find(|r| r.objective == "mlm40" && r.dataset == "conll2003_en" && r.learning_rate == 1e-4 && r.seed == 4)
        .unwrap();
    assert!(
        (outlier.score - 0.760).abs() < 0.001,
        "the diverged run the README mentions: {}",
        outlier.score
    );
    Ok(())
}

#[test]
fn failed_runs_become_nan() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let text = format!(
        "{HEADER}m,clm,SC,sst2,1e-05,0,validation,accuracy,0.9,ok\nm,clm,SC,sst2,1e-05,1,validation,accuracy,,ok\nm,clm,SC,sst2,1e-05,2,validation,accuracy,NaN,ok\nm,clm,SC,sst2,1e-05,3,validation,accuracy,0.8,diverged\n"
    );
    let runs = read_runs(&write(dir.path(), "r.csv", &text))?;
    let scores: Vec<bool> = runs.iter().map(|r| r.score.is_nan()).collect();
    assert_eq!(scores, [false, true, true, true]);
    // family, metric and status are optional
    let runs = read_runs(&write(
        dir.path(),
        "s.csv",
        "model,objective,dataset,learning_rate,seed,split,score\nm,mlm,sst2,2e-5,0,test,0.91\n",
    ))?;
    assert_eq!(
        (runs[0].family.clone(), runs[0].learning_rate, runs[0].score),
        (None, 2e-5, 0.91)
    );
    Ok(())
}

fn error_of(dir: &Path, text: &str) -> String {
    read_runs(&write(dir, "bad.csv", text)).unwrap_err().to_string()
}

#[test]
fn bad_runs_tables_name_file_line_and_column() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let err = error_of(
        d,
        "model,objective,dataset,learning_rate,split,score\nm,clm,sst2,1e-5,test,0.9\n",
    );
    assert!(
        err.contains("bad.csv:1") && err.contains("missing required column `seed`"),
        "{err}"
    );
    let err = error_of(d, &format!("{HEADER}m,clm,SC,sst2,1e-05,0,validation,accuracy,0.9,ok\nm,clm,SC,sst2,1e-05,1,validation,accuracy,high,ok\n"));
    assert!(
        err.contains("bad.csv:3") && err.contains("column `score`") && err.contains("\"high\" is not a number"),
        "{err}"
    );
    let err = error_of(d, &format!("{HEADER}m,clm,SC,sst2,1e-05,0,validation,accuracy,0.9,ok\nm,clm,SC,sst2,0.00001,0,validation,accuracy,0.8,ok\n"));
    assert!(
        err.contains("bad.csv:3") && err.contains("duplicate run") && err.contains("line 2"),
        "{err}"
    );
    let err = error_of(d, &format!("{HEADER}m,clm,SC,sst2,fast,0,validation,accuracy,0.9,ok\n"));
    assert!(err.contains("column `learning_rate`"), "{err}");
    let err = error_of(d, HEADER);
    assert!(err.contains("empty runs table"), "{err}");
    let err = error_of(d, "");
    assert!(err.contains("bad.csv"), "{err}");
    let err = read_runs(&d.join("absent.csv")).unwrap_err().to_string();
    assert!(err.contains("absent.csv") && err.contains("not found"), "{err}");
    Ok(())
}

#[test]
fn metadata_is_required_and_the_scale_is_checked() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runs_path = write(
        dir.path(),
        "r.csv",
        &format!(
            "{HEADER}m,clm,SC,sst2,1e-05,0,test,accuracy,91.2,ok\nm,clm,SC,mystery,1e-05,0,test,accuracy,0.5,ok\n"
        ),
    );
    let runs = read_runs(&runs_path)?;
    let meta = builtin_meta(&Registry::builtin()?);
    let origin = PathBuf::from("<built-in registry>");
    let err = check_meta(&runs[..1], &meta, &runs_path, &origin)
        .unwrap_err()
        .to_string();
    assert!(err.contains("r.csv:2") && err.contains("0-100 scale"), "{err}");
    let err = check_meta(&runs[1..], &meta, &runs_path, &origin)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("r.csv:3") && err.contains("`mystery` has no metadata") && err.contains("sst2"),
        "{err}"
    );
    let meta_path = write(
        dir.path(),
        "meta.csv",
        "dataset,family,metric_name,chance_score,max_score,higher_is_better\nsst2,SC,accuracy,50.92,100,True\n",
    );
    let meta100 = read_meta(&meta_path)?;
    check_meta(&runs[..1], &meta100, &runs_path, &meta_path)?;
    let bad = write(
        dir.path(),
        "meta2.csv",
        "dataset,family,metric_name,chance_score,max_score,higher_is_better\nsst2,SC,accuracy,0.5,1,maybe\n",
    );
    assert!(read_meta(&bad).unwrap_err().to_string().contains("meta2.csv:2"));
    Ok(())
}

#[cfg(feature = "polars")]
#[test]
fn parquet_runs_table() -> anyhow::Result<()> {
    use polars::prelude::*;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("runs.parquet");
    let mut df = df!(
        "model" => ["m", "m"], "objective" => ["clm", "clm"], "dataset" => ["sst2", "sst2"],
        "learning_rate" => [1e-5, 2e-5], "seed" => [0i64, 0], "split" => ["test", "test"], "score" => [Some(0.9), None]
    )?;
    ParquetWriter::new(std::fs::File::create(&path)?).finish(&mut df)?;
    let runs = read_runs(&path)?;
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].learning_rate, runs[0].score), (1e-5, 0.9));
    assert!(runs[1].score.is_nan());
    Ok(())
}

#[cfg(feature = "polars")]
#[test]
fn a_parquet_runs_table_refuses_a_cell_of_the_wrong_type_and_writes_nothing() -> anyhow::Result<()> {
    use encoderlab::stats::runs::write_runs_table;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("runs.parquet");
    let text = "model,objective,dataset,learning_rate,seed,split,score\n\
                m,clm,sst2,1e-4,0,test,0.5\n\
                m,clm,sst2,1e-4,one,test,\n";
    let err = write_runs_table(&out, text).unwrap_err().to_string();
    assert!(
        err.contains(":3") && err.contains("`seed`") && err.contains("`one`"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0, "nothing written");
    write_runs_table(&out, &text.replace(",one,", ",1,"))?;
    let runs = read_runs(&out)?;
    assert_eq!((runs[1].seed, runs[1].score.is_nan()), (1, true));
    Ok(())
}

/// Issue 18, items 4 to 8: values are validated where they enter. Non-finite scores (the `-inf`
/// that crashed statrs, `inf`, `1e400`), scores outside the metric's range (a negative
/// accuracy), split names other than `validation`/`test`, a system whose splits differ from the
/// others' on a dataset, and a dataset listed twice in the metadata are each refused with the
/// file, line and column.
#[test]
fn values_are_validated_where_they_enter() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let ok = "m,clm,SC,sst2,1e-05,0,validation,accuracy,0.9,ok\n";
    for bad in ["-inf", "inf", "1e400", "-1e400", "+Infinity"] {
        let err = error_of(
            d,
            &format!("{HEADER}{ok}m,clm,SC,sst2,1e-05,1,validation,accuracy,{bad},ok\n"),
        );
        assert!(
            err.contains("bad.csv:3") && err.contains("column `score`") && err.contains("not a finite number"),
            "{bad}: {err}"
        );
    }
    // the statistics never panic on what could still reach them
    assert!(encoderlab::stats::describe::t_sf(f64::NEG_INFINITY, 3.0) == 1.0);
    assert!(encoderlab::stats::describe::t_sf(f64::NAN, 3.0).is_nan());
    assert!(encoderlab::stats::describe::t_sf(2.0, f64::INFINITY).is_finite());
    assert!(encoderlab::stats::describe::t_quantile(0.975, f64::NAN).is_nan());

    // below the metric's worst score, or above its best
    let meta = builtin_meta(&Registry::builtin()?);
    let origin = PathBuf::from("<built-in registry>");
    for (score, hint) in [
        ("-0.2", "worst_score"),
        ("-1e308", "worst_score"),
        ("1.5", "0-100 scale"),
    ] {
        let path = write(
            d,
            "r.csv",
            &format!("{HEADER}{ok}m,clm,SC,sst2,1e-05,1,validation,accuracy,{score},ok\n"),
        );
        let err = check_meta(&read_runs(&path)?, &meta, &path, &origin)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("r.csv:3") && err.contains("column `score`") && err.contains(hint),
            "{score}: {err}"
        );
    }
    // a metric that can go below 0 says so in its metadata
    let mcc = write(
        d,
        "mcc.csv",
        "dataset,family,metric_name,chance_score,max_score,higher_is_better,worst_score\nsst2,SC,mcc,0,1,true,-1\n",
    );
    let path = write(
        d,
        "r.csv",
        &format!("{HEADER}m,clm,SC,sst2,1e-05,1,validation,mcc,-0.2,ok\n"),
    );
    check_meta(&read_runs(&path)?, &read_meta(&mcc)?, &path, &mcc)?;

    // split names: exactly validation and test
    for split in ["dev", "Test", "valid", " validation2"] {
        let err = error_of(
            d,
            &format!("{HEADER}{ok}m,clm,SC,sst2,1e-05,0,{split},accuracy,0.8,ok\n"),
        );
        assert!(
            err.contains("bad.csv:3") && err.contains("column `split`") && err.contains("`validation`"),
            "{split}: {err}"
        );
    }
    // a system with only test rows while the others have validation too
    let err = error_of(
        d,
        &format!(
            "{HEADER}{ok}m,clm,SC,sst2,1e-05,0,test,accuracy,0.8,ok\nm,mlm,SC,sst2,1e-05,0,test,accuracy,0.7,ok\n"
        ),
    );
    assert!(
        err.contains("bad.csv:4") && err.contains("m/mlm has no `validation` rows") && err.contains("line 2"),
        "{err}"
    );

    // a dataset listed twice in the metadata
    let twice = write(
        d,
        "twice.csv",
        "dataset,family,metric_name,chance_score,max_score,higher_is_better\nsst2,SC,accuracy,0.5,1,true\nrte,SC,accuracy,0.5,1,true\nsst2,SC,accuracy,0.9,1,true\n",
    );
    let err = read_meta(&twice).unwrap_err().to_string();
    assert!(
        err.contains("twice.csv:4") && err.contains("`sst2` is listed again") && err.contains("line 2"),
        "{err}"
    );
    Ok(())
}

/// Issue 18, item 8: names a spreadsheet would run as formulas are written with a leading `'`
/// (OWASP) in every CSV, and read back as they were.
#[test]
fn formula_like_names_are_escaped_and_read_back() -> anyhow::Result<()> {
    use encoderlab::artifacts::{csv_text, RunResult, RunRow, Status};
    let dir = tempfile::tempdir()?;
    let result = RunResult {
        run_id: "abc".into(),
        model: "=HYPERLINK(\"http://x\",\"y\")".into(),
        objective: "+mlm".into(),
        family: "SC".into(),
        dataset: "sst2".into(),
        learning_rate: 1e-5,
        pretrain_seed: 0,
        seed: 0,
        metric: "@acc".into(),
        validation: Some(0.5),
        test: Some(-0.0),
        all_scores: Vec::new(),
        status: Status::Ok,
        reason: None,
        steps: 1,
        examples: 1,
        train_examples_per_s: 1.0,
        eval_examples_per_s: 1.0,
        wall_seconds: 1.0,
    };
    let rows = RunRow::of_result(&result);
    let text = csv_text(&rows, None)?;
    let mut cells = csv::Reader::from_reader(text.as_bytes());
    let score = cells.headers()?.iter().position(|h| h == "score").unwrap_or(usize::MAX);
    for record in cells.records() {
        let record = record?;
        for cell in record.iter() {
            let formula = cell.starts_with(['=', '+', '@']) || (cell.starts_with('-') && cell.parse::<f64>().is_err());
            assert!(!formula, "a formula reaches the file: {cell:?}");
        }
        assert!(
            ["-0", "0.5"].contains(&&record[score]),
            "numbers stay numbers: {:?}",
            &record[score]
        );
    }
    let runs = read_runs(&write(dir.path(), "runs.csv", &text))?;
    assert_eq!(runs[0].model, result.model);
    assert_eq!(runs[0].objective, "+mlm");
    assert_eq!(runs[0].metric.as_deref(), Some("@acc"));

    // the report's tables escape every cell too
    let meta = builtin_meta(&Registry::builtin()?);
    let index = encoderlab::stats::report::RunsIndex::new(&runs, &meta, encoderlab::stats::report::NanPolicy::Drop);
    let table = encoderlab::stats::report::best_lr_table(&index, &encoderlab::stats::report::ReportConfig::default())?;
    let csv_text = table.to_csv()?;
    assert!(
        csv_text.contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",'+mlm,sst2"),
        "{csv_text}"
    );
    Ok(())
}

/// Issue 19, item 1: the optional `pretrain_seed` column. Absent or empty, it is 0; present, it
/// must be an integer (refused naming file, line and column otherwise); two runs that differ
/// only in it are two runs, not a duplicate; fine-tuning records write it, and records written
/// before it existed read as pretraining seed 0.
#[test]
fn pretrain_seed_column() -> anyhow::Result<()> {
    use encoderlab::artifacts::{csv_text, RunResult, RunRow};
    let dir = tempfile::tempdir()?;
    let header = "model,objective,dataset,learning_rate,pretrain_seed,seed,split,score\n";
    let runs = read_runs(&write(
        dir.path(),
        "p.csv",
        &format!("{header}m,clm,sst2,1e-5,0,0,test,0.9\nm,clm,sst2,1e-5,1,0,test,0.8\nm,clm,sst2,1e-5,,1,test,0.7\n"),
    ))?;
    let seeds: Vec<(i64, i64)> = runs.iter().map(|r| (r.pretrain_seed, r.seed)).collect();
    assert_eq!(seeds, [(0, 0), (1, 0), (0, 1)]);
    let absent = read_runs(&write(
        dir.path(),
        "a.csv",
        "model,objective,dataset,learning_rate,seed,split,score\nm,clm,sst2,1e-5,3,test,0.9\n",
    ))?;
    assert_eq!((absent[0].pretrain_seed, absent[0].seed), (0, 3));
    for bad in ["x", "1.5", "2e3"] {
        let e = error_of(
            dir.path(),
            &format!("{header}m,clm,sst2,1e-5,0,0,test,0.9\nm,clm,sst2,1e-5,{bad},1,test,0.9\n"),
        );
        assert!(
            e.contains("bad.csv:3") && e.contains("`pretrain_seed`") && e.contains("not an integer"),
            "{e}"
        );
    }
    let e = error_of(
        dir.path(),
        &format!("{header}m,clm,sst2,1e-5,2,0,test,0.9\nm,clm,sst2,1e-5,2,0,test,0.8\n"),
    );
    assert!(e.contains("duplicate run") && e.contains("line 2"), "{e}");

    // a record written before the column: pretraining seed 0; written now: the column
    let old = r#"{"run_id":"a","model":"m","objective":"clm","family":"SC","dataset":"sst2","learning_rate":1e-5,"seed":2,"metric":"accuracy","validation":0.5,"test":0.5,"all_scores":[],"status":"ok","reason":null,"steps":1,"examples":1,"train_examples_per_s":1.0,"eval_examples_per_s":1.0,"wall_seconds":1.0}"#;
    let mut r: RunResult = serde_json::from_str(old)?;
    assert_eq!(r.pretrain_seed, 0);
    r.pretrain_seed = 7;
    let written = read_runs(&write(dir.path(), "w.csv", &csv_text(&RunRow::of_result(&r), None)?))?;
    assert!(written.iter().all(|w| (w.pretrain_seed, w.seed) == (7, 2)));
    Ok(())
}

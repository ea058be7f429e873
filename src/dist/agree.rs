//! What the ranks of a data-parallel run must agree on: the run, the data and the starting
//! point before they train together, and the weights at every checkpoint.

use std::path::Path;

use candle_core::DType;
use candle_nn::VarMap;
use sha2::{Digest, Sha256};

use crate::data::PackedDataset;
use crate::dist::Communicator;
use crate::error::{Error, Result};
use crate::model::sorted_vars;
use crate::train::PretrainConfig;

/// Refuses to go on when the ranks' weights are not the same bits (a backend whose sums differ
/// between ranks, a rank that skipped a step): checked at every checkpoint of a run of several
/// ranks, before rank 0 writes it.
pub(crate) fn check_same_weights(world: &dyn Communicator, map: &VarMap, step: usize) -> Result<()> {
    if world.size() == 1 {
        return Ok(());
    }
    let mut hash = Sha256::new();
    for (_, var) in sorted_vars(map)? {
        let values: Vec<f32> = var.as_tensor().flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
        let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
        hash.update(&bytes);
    }
    let mine = hash.finalize().to_vec();
    let all = world.gather_bytes("the weights' agreement", &mine)?;
    let differing: Vec<String> = (1..world.size())
        .filter(|&r| all[r * 32..(r + 1) * 32] != all[..32])
        .map(|r| r.to_string())
        .collect();
    match differing.is_empty() {
        true => Ok(()),
        false => Err(Error::Distributed {
            rank: world.rank(),
            size: world.size(),
            reason: format!(
                "at step {step} the weights of rank {} differ from rank 0's: the ranks no longer train one model; the previous checkpoint is intact (this is a bug of the backend: please report it)",
                differing.join(", ")
            ),
        }),
    }
}

/// What every rank must agree on before training together: the run (its resolved
/// configuration), the data (the pack's `meta.json` and token file sizes) and the start (the
/// step, and the checkpoint's state and weights file). Refuses, naming the ranks and what
/// differs, when they do not.
pub(crate) fn agree_on_start(
    world: &dyn Communicator,
    cfg: &PretrainConfig,
    data: &PackedDataset,
    resume: Option<&Path>,
    step: usize,
) -> Result<()> {
    if world.size() == 1 {
        return Ok(());
    }
    let file_facts = |path: &Path| -> String {
        let len = std::fs::metadata(path).map(|m| m.len()).ok();
        let bytes = if len.is_some_and(|l| l < 1 << 20) {
            std::fs::read(path).ok()
        } else {
            None
        };
        format!("{len:?} {:?}", bytes.map(|b| format!("{:x}", Sha256::digest(b))))
    };
    let pack = data.dir();
    let facts = [
        (
            "configuration",
            format!("{} {}", cfg.run_id()?, serde_json::to_string(cfg).unwrap_or_default()),
        ),
        (
            "pack",
            ["meta.json", &data.meta().train.file, &data.meta().validation.file]
                .iter()
                .map(|f| file_facts(&pack.join(f)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "starting point",
            format!(
                "step {step} {}",
                resume.map_or(String::new(), |d| [
                    "trainer_state.json",
                    "model.safetensors",
                    "optimizer.safetensors"
                ]
                .iter()
                .map(|f| file_facts(&d.join(f)))
                .collect::<Vec<_>>()
                .join(" "))
            ),
        ),
    ];
    let mut mine = Vec::new();
    for (_, text) in &facts {
        mine.extend_from_slice(&Sha256::digest(text.as_bytes()));
    }
    let all = world.gather_bytes("the start's agreement (configuration, pack, checkpoint)", &mine)?;
    let per_rank: Vec<&[u8]> = all.chunks(mine.len()).collect();
    let mut differing = Vec::new();
    for (k, (what, _)) in facts.iter().enumerate() {
        let of = |r: &[u8]| r[k * 32..(k + 1) * 32].to_vec();
        let ranks: Vec<String> = (1..per_rank.len())
            .filter(|&r| of(per_rank[r]) != of(per_rank[0]))
            .map(|r| r.to_string())
            .collect();
        if !ranks.is_empty() {
            differing.push(format!("the {what} of rank {} differs from rank 0's", ranks.join(", ")));
        }
    }
    if differing.is_empty() {
        return Ok(());
    }
    Err(Error::config(
        "launch",
        format!(
            "{} (rank {} of {}; pack {}{}): every rank must run the same configuration on the same pack from the same checkpoint (one shared file system, the same command)",
            differing.join("; "),
            world.rank(),
            world.size(),
            pack.display(),
            resume.map_or(String::new(), |d| format!(", checkpoint {}", d.display()))
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rank 0 of two whose peer holds `peer` (its own bytes with the first one flipped, or the
    /// same bytes).
    struct TwoRanks {
        peer_differs: bool,
    }

    impl Communicator for TwoRanks {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            2
        }
        fn sum_f32(&self, _: &str, _: &mut [f32]) -> Result<()> {
            Ok(())
        }
        fn sum_f64(&self, _: &str, _: &mut [f64]) -> Result<()> {
            Ok(())
        }
        fn gather_bytes(&self, _: &str, mine: &[u8]) -> Result<Vec<u8>> {
            let mut peer = mine.to_vec();
            if self.peer_differs {
                peer[0] ^= 1;
            }
            Ok([mine.to_vec(), peer].concat())
        }
        fn finish(&self) -> Result<()> {
            Ok(())
        }
        fn abort_job(&self, _: i32) {}
        fn describe(&self) -> String {
            "two ranks".into()
        }
    }

    #[test]
    fn ranks_whose_weights_differ_are_stopped() {
        let map = VarMap::new();
        map.get(
            (2, 3),
            "w",
            candle_nn::Init::Const(0.5),
            DType::F32,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        check_same_weights(&TwoRanks { peer_differs: false }, &map, 4).unwrap();
        let e = check_same_weights(&TwoRanks { peer_differs: true }, &map, 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at step 4 the weights of rank 1 differ"), "{e}");
    }
}

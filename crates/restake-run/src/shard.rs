//! Sharded runs: which paths shard `I` of `K` simulates, and the partial file it writes.
//!
//! A partial file holds a header (its format, the engine version, the job's digest, the
//! job itself so that `merge` can rebuild it, seed and path overrides, shard index and
//! count) and one [`Partial`] per scenario of the job, each with its own checksum.

use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use restake_core::BATCH_PATHS;
use restake_core::reduce::{Partial, read_frame, write_frame};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::RunError;
use crate::job::{Job, JobSpec, Overrides};

/// Most shards a run is split into.
pub const MAX_SHARDS: u64 = 1_000_000;

/// Version of the partial file's layout; `merge` refuses any other.
pub const SHARD_FORMAT_VERSION: u32 = 1;

/// First bytes of a partial file.
const MAGIC: &[u8; 8] = b"RSTKSHRD";

/// Largest header a reader accepts (the job's scenario texts), bytes.
const MAX_HEADER_BYTES: u64 = 1 << 30;

/// Shard `index` of `count`: the batches `[B index / count, B (index + 1) / count)` of
/// the run's `B` batches of [`BATCH_PATHS`] paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPlan {
    /// 0-based index (Slurm's `SLURM_ARRAY_TASK_ID`, Kubernetes' `JOB_COMPLETION_INDEX`).
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl ShardPlan {
    /// The whole run in one piece.
    pub const WHOLE: Self = Self { index: 0, count: 1 };

    /// Checks `index < count <= MAX_SHARDS`.
    ///
    /// # Errors
    /// [`RunError::BadInput`] naming the flag.
    pub fn new(index: u64, count: u64) -> Result<Self, RunError> {
        if !(1..=MAX_SHARDS).contains(&count) {
            return Err(RunError::BadInput(format!(
                "--shard-count must be in [1, {MAX_SHARDS}], got {count}"
            )));
        }
        if index >= count {
            return Err(RunError::BadInput(format!(
                "--shard-index must be in [0, {}] for --shard-count {count}, got {index}",
                count - 1
            )));
        }
        Ok(Self { index, count })
    }

    /// The paths of this shard in a run of `paths` paths (batch-aligned; empty when
    /// there are more shards than batches).
    pub fn range(&self, paths: u64) -> Range<u64> {
        let batches = paths.div_ceil(BATCH_PATHS);
        let at = |k: u64| {
            ((u128::from(batches) * u128::from(k) / u128::from(self.count)) as u64 * BATCH_PATHS)
                .min(paths)
        };
        at(self.index)..at(self.index + 1)
    }
}

/// What identifies a sharded job: every partial of one job has the same header but for
/// the shard index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// [`SHARD_FORMAT_VERSION`].
    pub format_version: u32,
    /// Version of restake-mc that wrote it.
    pub engine_version: String,
    /// SHA-256 of the job and the overrides, hex.
    pub digest: String,
    /// The job, to rebuild it at the merge.
    pub job: JobSpec,
    /// The command line's path and seed overrides.
    pub overrides: Overrides,
    /// This shard.
    pub shard: ShardPlan,
}

impl Header {
    /// The header of `job`'s shard `shard`.
    pub fn new(job: &Job, shard: ShardPlan) -> Self {
        Self {
            format_version: SHARD_FORMAT_VERSION,
            engine_version: env!("CARGO_PKG_VERSION").to_string(),
            digest: digest(&job.spec, &job.overrides),
            job: job.spec.clone(),
            overrides: job.overrides,
            shard,
        }
    }
}

/// SHA-256 of a job and its overrides (their JSON), hex.
fn digest(spec: &JobSpec, overrides: &Overrides) -> String {
    let bytes = serde_json::to_vec(&(spec, overrides)).expect("a job serialises");
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a partial file: the header (JSON) as a frame with magic `RSTKSHRD` and
/// [`SHARD_FORMAT_VERSION`] ([`write_frame`]), then each scenario's partial
/// ([`Partial::write_to`]).
///
/// # Errors
/// The writer's.
pub fn write_partial_file(
    mut w: impl Write,
    header: &Header,
    partials: &[Partial],
) -> std::io::Result<()> {
    let head = serde_json::to_vec(header).map_err(std::io::Error::other)?;
    write_frame(&mut w, MAGIC, SHARD_FORMAT_VERSION, &head)?;
    for p in partials {
        p.write_to(&mut w)?;
    }
    w.flush()
}

/// Reads a partial file written by [`write_partial_file`]: its header and one partial
/// per scenario of its job.
///
/// # Errors
/// [`RunError::BadInput`] naming `name` for a truncated, corrupted or foreign file or one
/// of another format version.
pub fn read_partial_file(name: &str, mut r: impl Read) -> Result<(Header, Vec<Partial>), RunError> {
    let bad = |why: String| RunError::BadInput(format!("{name}: {why}"));
    let json = read_frame(&mut r, MAGIC, SHARD_FORMAT_VERSION, MAX_HEADER_BYTES).map_err(bad)?;
    let header: Header =
        serde_json::from_slice(&json).map_err(|e| bad(format!("corrupted header: {e}")))?;
    if header.digest != digest(&header.job, &header.overrides) {
        return Err(bad("corrupted: its job does not match its digest".into()));
    }
    let members = match &header.job {
        JobSpec::Run(_) => 1,
        JobSpec::Batch(sources) => sources.len(),
        // The grid's size (the stresses' count) is known once the job is rebuilt;
        // read until the end.
        JobSpec::Sweep { .. } | JobSpec::Stress(_) => usize::MAX,
    };
    let mut partials = Vec::new();
    let mut r = std::io::BufReader::new(r);
    while partials.len() < members {
        let at_end = std::io::BufRead::fill_buf(&mut r)
            .map_err(|e| bad(e.to_string()))?
            .is_empty();
        if at_end && members == usize::MAX {
            break;
        }
        partials.push(Partial::read_from(&mut r).map_err(|e| bad(e.to_string()))?);
    }
    let mut rest = [0u8; 1];
    if r.read(&mut rest).map_err(|e| bad(e.to_string()))? != 0 {
        return Err(bad("trailing bytes after the last partial".into()));
    }
    Ok((header, partials))
}

/// Reads partial files and merges them into one complete partial per scenario of their
/// job, checking that they are the `K` shards of one job, each once.
///
/// # Errors
/// [`RunError::BadInput`] for an unreadable file, partials of different jobs, seeds,
/// path counts or versions, a missing or repeated shard, or partials that do not merge.
pub fn merge_files(files: &[PathBuf], threads: usize) -> Result<(Job, Vec<Partial>), RunError> {
    let mut shards: Vec<(Header, Vec<Partial>, &Path)> = Vec::new();
    for f in files {
        let file = std::fs::File::open(f)
            .map_err(|e| RunError::BadInput(format!("cannot read {}: {e}", f.display())))?;
        let (h, p) = read_partial_file(&f.display().to_string(), std::io::BufReader::new(file))?;
        shards.push((h, p, f));
    }
    let (first, _, first_file) = shards
        .first()
        .ok_or_else(|| RunError::BadInput("merge needs at least one partial file".into()))?;
    for (h, _, f) in &shards[1..] {
        let differs = |what: &str| {
            RunError::BadInput(format!(
                "{} and {}: partials of different {what}",
                first_file.display(),
                f.display()
            ))
        };
        if h.engine_version != first.engine_version {
            return Err(differs("restake-mc versions"));
        }
        if h.digest != first.digest {
            return Err(differs("jobs (scenarios, seeds or path counts)"));
        }
        if h.shard.count != first.shard.count {
            return Err(differs("shard counts"));
        }
    }
    let count = first.shard.count;
    let mut by_index: Vec<Option<usize>> = vec![None; count as usize];
    for (i, (h, _, f)) in shards.iter().enumerate() {
        let slot = &mut by_index[h.shard.index as usize];
        if let Some(j) = slot {
            return Err(RunError::BadInput(format!(
                "shard {} of {count} is given twice: {} and {}",
                h.shard.index,
                shards[*j].2.display(),
                f.display()
            )));
        }
        *slot = Some(i);
    }
    let missing: Vec<String> = by_index
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(RunError::BadInput(format!(
            "shards {} of {count} are missing",
            missing.join(", ")
        )));
    }
    let job = Job::build(first.job.clone(), first.overrides, threads)?;
    let mut merged: Vec<Option<Partial>> = vec![None; job.members.len()];
    for i in by_index.into_iter().flatten() {
        let (_, partials, f) = &shards[i];
        if partials.len() != job.members.len() {
            return Err(RunError::BadInput(format!(
                "{}: {} partials for a job of {} scenarios",
                f.display(),
                partials.len(),
                job.members.len()
            )));
        }
        for (slot, p) in merged.iter_mut().zip(partials) {
            match slot {
                None => *slot = Some(p.clone()),
                Some(acc) => acc
                    .merge(p)
                    .map_err(|e| RunError::BadInput(format!("{}: {e}", f.display())))?,
            }
        }
    }
    Ok((job, merged.into_iter().flatten().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_tile_the_run_in_batches() {
        for (paths, count) in [(1u64, 1u64), (4096, 3), (1_000_000, 7), (12_345, 100)] {
            let ranges: Vec<Range<u64>> = (0..count)
                .map(|i| ShardPlan::new(i, count).unwrap().range(paths))
                .collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges.last().unwrap().end, paths);
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start);
                assert!(w[0].end.is_multiple_of(BATCH_PATHS) || w[0].end == paths);
            }
        }
        assert!(ShardPlan::new(3, 3).is_err());
        assert!(ShardPlan::new(0, 0).is_err());
        assert!(ShardPlan::new(0, MAX_SHARDS + 1).is_err());
    }
}

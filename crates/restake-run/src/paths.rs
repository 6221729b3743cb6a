//! Every path of a run as named columns: what `run --paths-out FILE.parquet` writes and
//! what the Python bindings hand to pandas (`docs/python.md#every-path`).
//!
//! One row per path, in path order: `path` (0-based), the outcome's fields of
//! [`PathOutcome`] under their `summary.csv` names, the loan's four terms when the
//! scenario has `[leverage]`, then one column per AVS (`avs:<name>`) and one per
//! operator (`operator:<name>`) with the slashing loss through it in ETH: the rows
//! `avs` and `operator` of `contributions.csv`, path by path. The paths are the run's
//! own, bit for bit ([`restake_core::engine::simulate_range`] with the run's seed), so
//! the file's mean net return is `summary.csv`'s `mean_net_return`.

use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

use parquet::basic::{Compression, IntType, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{DoubleType, Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use restake_core::engine::{PathSet, simulate_range, thread_pool};
use restake_core::{BATCH_PATHS, ContributionKind, PathOutcome};

use crate::{Member, RunError};

/// Largest per-path output, in bytes before compression (8 bytes a value): 4 GB. A run
/// whose file or table would be larger is refused with the estimate
/// ([`check_size`]); it is about 20 million paths of the default scenario.
pub const MAX_PATHS_OUTPUT_BYTES: u64 = 4_000_000_000;

/// Paths simulated, and written as one Parquet row group, at a time: 32 batches, about
/// 30 MB of columns for the default scenario.
pub const CHUNK_PATHS: u64 = 32 * BATCH_PATHS;

/// The values of one column, in path order.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Path indices.
    Index(Vec<u64>),
    /// Counts (liquidation calls).
    Count(Vec<u32>),
    /// Returns (fractions) and amounts (ETH).
    Value(Vec<f64>),
}

impl ColumnData {
    /// Appends `other`'s values, of the same kind, after these.
    ///
    /// # Panics
    /// If `other` is of another kind.
    fn append(&mut self, other: Self) {
        match (self, other) {
            (Self::Index(a), Self::Index(b)) => a.extend(b),
            (Self::Count(a), Self::Count(b)) => a.extend(b),
            (Self::Value(a), Self::Value(b)) => a.extend(b),
            _ => panic!("columns of different kinds"),
        }
    }
}

/// A named column of the per-path table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name (`net_return`, `avs:EigenDA`, ...).
    pub name: String,
    /// One value per path.
    pub data: ColumnData,
}

/// A column of the outcome: its name and its field.
type OutcomeColumn = (&'static str, fn(&PathOutcome) -> f64);

/// The outcome's columns in order. The loan's follow them when present.
const OUTCOME_COLUMNS: [OutcomeColumn; 7] = [
    ("net_return", |o| o.net_return),
    ("excess_return", |o| o.excess_return),
    ("slashing_loss_eth", |o| o.slashing_loss_eth),
    ("base_income_eth", |o| o.base_income_eth),
    ("avs_fee_income_eth", |o| o.avs_fee_income_eth),
    ("incentive_value_eth", |o| o.incentive_value_eth),
    ("depeg_loss_eth", |o| o.depeg_loss_eth),
];

/// A levered position's columns: name and field (the count of liquidation calls
/// follows them).
const LOAN_COLUMNS: [OutcomeColumn; 3] = [
    ("liquidation_loss_eth", |o| o.liquidation_loss_eth),
    ("borrow_cost_eth", |o| o.borrow_cost_eth),
    ("bad_debt_eth", |o| o.bad_debt_eth),
];

/// Name of the column of liquidation calls.
const LIQUIDATIONS: &str = "liquidations";

/// The contribution rows that get a column (the per-AVS and per-operator breakdowns),
/// as (row index, column name), in the order of `contributions.csv`.
fn breakdown_columns(member: &Member) -> Vec<(usize, String)> {
    member
        .model
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r.kind {
            ContributionKind::Avs => Some((i, format!("avs:{}", r.source))),
            ContributionKind::Operator => Some((i, format!("operator:{}", r.source))),
            _ => None,
        })
        .collect()
}

/// The column names of `member`'s per-path table, in order.
pub fn column_names(member: &Member) -> Vec<String> {
    let mut names = vec!["path".to_string()];
    names.extend(OUTCOME_COLUMNS.iter().map(|(n, _)| n.to_string()));
    if member.model.leverage.is_some() {
        names.extend(LOAN_COLUMNS.iter().map(|(n, _)| n.to_string()));
        names.push(LIQUIDATIONS.to_string());
    }
    names.extend(breakdown_columns(member).into_iter().map(|(_, n)| n));
    names
}

/// Size in bytes of `member`'s per-path table before compression: 8 bytes a value.
pub fn size_estimate_bytes(member: &Member) -> u64 {
    member
        .config
        .paths
        .saturating_mul(column_names(member).len() as u64 * 8)
}

/// Checks that `member`'s per-path table stays within [`MAX_PATHS_OUTPUT_BYTES`];
/// `what` names the output in the message (`--paths-out`).
///
/// # Errors
/// [`RunError::BadInput`] with the estimated size and the largest path count allowed.
pub fn check_size(member: &Member, what: &str) -> Result<(), RunError> {
    let bytes = size_estimate_bytes(member);
    if bytes <= MAX_PATHS_OUTPUT_BYTES {
        return Ok(());
    }
    let columns = column_names(member).len() as u64;
    Err(RunError::BadInput(format!(
        "{what}: {} paths x {columns} columns would take about {:.1} GB (8 bytes a value before compression), more than the {:.0} GB limit: use at most {} paths, or the summary files",
        member.config.paths,
        bytes as f64 / 1e9,
        MAX_PATHS_OUTPUT_BYTES as f64 / 1e9,
        MAX_PATHS_OUTPUT_BYTES / (columns * 8)
    )))
}

/// Simulates paths `range` of `member`'s run on `pool` into the values of the columns
/// of [`column_names`], in that order, reusing `set`.
fn chunk_columns(
    member: &Member,
    range: Range<u64>,
    pool: &rayon::ThreadPool,
    set: &mut PathSet,
) -> Result<Vec<ColumnData>, RunError> {
    simulate_range(
        &member.model,
        member.config.seed,
        range.clone(),
        pool,
        &|_| {},
        set,
    )
    .map_err(|e| RunError::BadInput(format!("{}: {e}", member.origin)))?;
    let outcomes = &set.outcomes;
    let mut fields = OUTCOME_COLUMNS.to_vec();
    if member.model.leverage.is_some() {
        fields.extend(LOAN_COLUMNS);
    }
    let mut columns = vec![ColumnData::Index(range.collect())];
    columns.extend(
        fields
            .iter()
            .map(|(_, f)| ColumnData::Value(outcomes.iter().map(f).collect())),
    );
    if member.model.leverage.is_some() {
        columns.push(ColumnData::Count(
            outcomes.iter().map(|o| o.liquidations).collect(),
        ));
    }
    let breakdown = breakdown_columns(member);
    let mut slot = vec![usize::MAX; member.model.rows.len()];
    let mut losses = vec![vec![0.0; outcomes.len()]; breakdown.len()];
    for (j, (row, _)) in breakdown.iter().enumerate() {
        slot[*row] = j;
    }
    for loss in &set.row_losses {
        if let Some(column) = losses.get_mut(slot[loss.row as usize]) {
            column[loss.path as usize] = loss.loss_eth;
        }
    }
    columns.extend(losses.into_iter().map(ColumnData::Value));
    Ok(columns)
}

/// Every path of `member`'s run as the columns of [`column_names`], in memory (the
/// Python bindings' table). `progress` gets the paths done so far.
///
/// # Errors
/// [`RunError::BadInput`] past [`MAX_PATHS_OUTPUT_BYTES`] ([`check_size`]), for a
/// thread count the pool refuses, or a path value that overflows.
pub fn columns(member: &Member, progress: &dyn Fn(u64)) -> Result<Vec<Column>, RunError> {
    check_size(member, "paths")?;
    let mut all: Vec<ColumnData> = Vec::new();
    for_each_chunk(member, &mut |chunk, done| {
        if all.is_empty() {
            all = chunk;
        } else {
            for (a, c) in all.iter_mut().zip(chunk) {
                a.append(c);
            }
        }
        progress(done);
        Ok(())
    })?;
    Ok(column_names(member)
        .into_iter()
        .zip(all)
        .map(|(name, data)| Column { name, data })
        .collect())
}

/// Calls `f` with the columns of each chunk of [`CHUNK_PATHS`] paths of `member`'s run
/// in path order, and the paths done with it; stops with [`RunError::Interrupted`]
/// between two chunks after [`crate::publish::interrupt`] (a signal while the file is
/// written).
fn for_each_chunk(
    member: &Member,
    f: &mut dyn FnMut(Vec<ColumnData>, u64) -> Result<(), RunError>,
) -> Result<(), RunError> {
    let pool = thread_pool(member.config.threads).map_err(|e| RunError::BadInput(e.to_string()))?;
    let mut set = PathSet::default();
    let paths = member.config.paths;
    for start in (0..paths).step_by(CHUNK_PATHS as usize) {
        crate::publish::check_interrupted()?;
        let end = (start + CHUNK_PATHS).min(paths);
        let chunk = chunk_columns(member, start..end, &pool, &mut set)?;
        f(chunk, end)?;
    }
    Ok(())
}

/// Writes every path of `member`'s run to `w` as a Parquet file: one row group per
/// [`CHUNK_PATHS`] paths, Snappy-compressed, `path` an unsigned 64-bit integer,
/// `liquidations` an unsigned 32-bit one, every other column a double; the file's
/// key-value metadata gives the scenario's name and origin, the seed, the path count
/// and the version of restake-mc. Memory stays that of one chunk, whatever the paths.
///
/// # Errors
/// [`RunError::BadInput`] past [`MAX_PATHS_OUTPUT_BYTES`] ([`check_size`]) or when the
/// simulation fails; [`RunError::Io`] when the file cannot be written.
pub fn write_parquet(member: &Member, w: &mut (dyn Write + Send)) -> Result<(), RunError> {
    check_size(member, "--paths-out")?;
    let parquet_error = |e: ParquetError| RunError::Io {
        context: "writing the per-path Parquet file".into(),
        source: std::io::Error::other(e),
    };
    let schema = schema(member).map_err(parquet_error)?;
    let metadata = [
        ("restake_mc.scenario", member.scenario.spec().name.clone()),
        ("restake_mc.scenario_file", member.origin.clone()),
        ("restake_mc.seed", member.config.seed.to_string()),
        ("restake_mc.paths", member.config.paths.to_string()),
        ("restake_mc.version", env!("CARGO_PKG_VERSION").to_string()),
    ]
    .into_iter()
    .map(|(k, v)| KeyValue::new(k.to_string(), v))
    .collect();
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("restake-mc {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut writer = SerializedFileWriter::new(w, Arc::new(schema), Arc::new(properties))
        .map_err(parquet_error)?;
    for_each_chunk(member, &mut |chunk, _| {
        let mut group = writer.next_row_group().map_err(parquet_error)?;
        for column in chunk {
            let mut out = group
                .next_column()
                .map_err(parquet_error)?
                .expect("the schema has a field per column");
            match &column {
                ColumnData::Index(v) => {
                    let v: Vec<i64> = v.iter().map(|&x| x as i64).collect();
                    out.typed::<Int64Type>().write_batch(&v, None, None)
                }
                ColumnData::Count(v) => {
                    let v: Vec<i32> = v.iter().map(|&x| x as i32).collect();
                    out.typed::<Int32Type>().write_batch(&v, None, None)
                }
                ColumnData::Value(v) => out.typed::<DoubleType>().write_batch(v, None, None),
            }
            .map_err(parquet_error)?;
            out.close().map_err(parquet_error)?;
        }
        group.close().map_err(parquet_error)?;
        Ok(())
    })?;
    writer.close().map_err(parquet_error)?;
    Ok(())
}

/// The Parquet schema of `member`'s per-path table: every field required.
fn schema(member: &Member) -> Result<Type, ParquetError> {
    let loan = member.model.leverage.is_some();
    let fields = column_names(member)
        .into_iter()
        .map(|name| {
            let (physical, logical) = match name.as_str() {
                "path" => (PhysicalType::INT64, Some(unsigned(64))),
                LIQUIDATIONS if loan => (PhysicalType::INT32, Some(unsigned(32))),
                _ => (PhysicalType::DOUBLE, None),
            };
            Type::primitive_type_builder(&name, physical)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(logical)
                .build()
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Type::group_type_builder("restake_mc_paths")
        .with_fields(fields)
        .build()
}

/// An unsigned integer type of `bits` bits.
fn unsigned(bits: i8) -> LogicalType {
    LogicalType::Integer(IntType {
        bit_width: bits,
        is_signed: false,
    })
}

//! What a scenario file says, and the checks that turn it into a valid [`Scenario`].
//!
//! Parsing happens in two stages (the README's "Scenario files" is the contract for the names):
//! [`ScenarioSpec`] mirrors the TOML file field for field (`deny_unknown_fields`), and
//! [`Scenario::from_toml`] / [`Scenario::try_from`] check every value against the model's
//! ranges (`docs/model.md#a-path`). A `Scenario` can only be built through those checks, so
//! the engine never sees an invalid value.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::ScenarioError;

/// Tolerance on the sum of operator weights (must be 1) and of `unique` allocations
/// (must be at most 1): room for decimal fractions such as 0.1 + 0.2, nothing more.
pub const SUM_TOLERANCE: f64 = 1e-9;

/// Largest number of paths one process simulates (a run in one piece, or one shard): a
/// bound on the time a typo can cost, not on memory, which hardly grows with the paths
/// (`docs/performance.md`).
pub const MAX_PATHS: u64 = 100_000_000;

/// Largest number of paths of a run split into shards ([`crate::reduce`]).
pub const MAX_SHARDED_PATHS: u64 = 1_000_000_000_000;

/// A whole scenario file, as written (README, "Output files"). No value is checked yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Scenario name; also the default output folder `reports/<name>/`. Letters, digits,
    /// `-`, `_` and `.` only.
    pub name: String,
    /// Free text shown in `run.json`.
    #[serde(default)]
    pub description: String,
    /// The position: principal, route, horizon, stake mode.
    pub position: PositionSpec,
    /// Base staking rewards and beacon-chain slashing.
    pub base: BaseSpec,
    /// The LRT layer; required with `route = "liquid"`, refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liquid: Option<LiquidSpec>,
    /// Restaking-protocol or LRT contract exploit; absent means no exploit risk.
    #[serde(default)]
    pub protocol: ProtocolSpec,
    /// Reward tokens priced in ETH (`[[token]]`).
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenSpec>,
    /// Programmatic token incentives on the whole restaked stake (`[[incentive]]`).
    #[serde(default, rename = "incentive")]
    pub incentives: Vec<IncentiveSpec>,
    /// Actively validated services (`[[avs]]`).
    #[serde(default, rename = "avs")]
    pub avs: Vec<AvsSpec>,
    /// Operators the position is delegated to (`[[operator]]`); at least one.
    #[serde(default, rename = "operator")]
    pub operators: Vec<OperatorSpec>,
    /// Extra report settings.
    #[serde(default)]
    pub report: ReportSpec,
    /// Default path count, seed and checkpoint spacing (the CLI flags override them).
    #[serde(default)]
    pub simulation: SimulationSpec,
    /// The systematic factor (`docs/model.md#systematic-factor`); absent: independent
    /// sources, and no factor drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systematic: Option<crate::stress::SystematicSpec>,
    /// Stress tests (`[[stress]]`, `docs/model.md#stress-tests`), run by `restake-mc stress`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stress: Vec<crate::stress::StressSpec>,
    /// The LRT looped on a lending market (`docs/model.md#leverage`); absent: no loan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leverage: Option<crate::leverage::LeverageSpec>,
}

/// Route into restaking (`docs/model.md#a-path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// The holder restakes its own validators; no LRT layer.
    Native,
    /// The holder deposits into a liquid restaking protocol and holds its token.
    Liquid,
}

/// How an operator's allocations slash (`docs/model.md#a-path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StakeMode {
    /// Allocations are magnitudes of unique stake (sum at most 1); AVS `i` slashes only
    /// its own pool.
    #[default]
    Unique,
    /// The whole stake backs every AVS; AVS `i` slashes up to `a_{k,i} S_k`.
    Shared,
}

/// How the holder leaves a liquid position at the horizon (`docs/model.md#a-path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitMode {
    /// Redeem with the protocol at the exchange rate: no depeg.
    #[default]
    Redeem,
    /// Sell the LRT on the market: a depeg discount with probability `depeg_prob`.
    Market,
}

/// `[position]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionSpec {
    /// Principal `P` in ETH, in [[`MIN_PRINCIPAL_ETH`] = 1e-9, 1e15].
    pub principal_eth: f64,
    /// `native` or `liquid`.
    pub route: Route,
    /// Horizon `T` in days (a year is 365 days), in [[`MIN_HORIZON_DAYS`] = 0.001, 36500].
    pub horizon_days: f64,
    /// `unique` (default) or `shared`.
    #[serde(default)]
    pub stake_mode: StakeMode,
}

/// `[base]`: base staking rewards and beacon-chain slashing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseSpec {
    /// Mean of the per-path base APR `r_b` (fraction a year), in [0, 1).
    pub apr_mean: f64,
    /// Standard deviation of `r_b` before truncation at 0, in [0, 1).
    #[serde(default)]
    pub apr_sd: f64,
    /// Fee `phi_b` on base rewards (LST/LRT fee), in [0, 1].
    #[serde(default)]
    pub fee: f64,
    /// Annual probability `b_k` of a beacon-chain slashing of each operator's validators,
    /// in [0, 1).
    #[serde(default)]
    pub slash_prob: f64,
    /// Severity of a beacon-chain slashing, as a fraction of the operator's whole stake;
    /// required when `slash_prob > 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slash_severity: Option<SeveritySpec>,
}

/// `[liquid]`: the LRT layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiquidSpec {
    /// LRT fee `phi_r` on restaking rewards (AVS fees and tokens), in [0, 1].
    #[serde(default)]
    pub reward_fee: f64,
    /// `redeem` (default) or `market`.
    #[serde(default)]
    pub exit: ExitMode,
    /// Probability `q_depeg` that a market exit meets a discount, in [0, 1].
    #[serde(default)]
    pub depeg_prob: f64,
    /// Discount `d` on the stake when a depeg hits; required with `exit = "market"` and
    /// `depeg_prob > 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depeg_discount: Option<SeveritySpec>,
    /// Length in days of a depeg episode, in (0, 3650]: what a market oracle of
    /// `[leverage]` sees for that long (`docs/model.md#leverage`); required with
    /// `leverage.oracle = "market"` and `depeg_prob > 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depeg_days: Option<f64>,
}

/// `[protocol]`: restaking-protocol or LRT contract exploit.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolSpec {
    /// Annual probability `e` of an exploit, in [0, 1).
    #[serde(default)]
    pub exploit_prob: f64,
    /// Share of every stake lost in an exploit; required when `exploit_prob > 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exploit_severity: Option<SeveritySpec>,
}

/// `[[token]]`: a reward token whose ETH price follows a GBM (`docs/model.md#a-path`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Token name, unique.
    pub name: String,
    /// Start price `X_j(0)` in ETH, in [1e-12, 1e12].
    pub price_eth: f64,
    /// Annual drift `mu_j` of the GBM, in [-10, 10].
    #[serde(default)]
    pub drift: f64,
    /// Annual volatility `sigma_j` of the GBM, in [0, 10].
    #[serde(default)]
    pub volatility: f64,
}

/// `[[incentive]]`: programmatic incentives on the whole restaked stake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncentiveSpec {
    /// A declared token's name.
    pub token: String,
    /// Gross incentive APR `g_j` on the stake, valued at the start price, a fraction a year
    /// in [0, 1].
    pub apr: f64,
}

/// `[[avs]]`: an actively validated service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvsSpec {
    /// AVS name, unique.
    pub name: String,
    /// Fee APR `f_i` paid in ETH on the stake allocated to it, a fraction a year in [0, 1].
    #[serde(default)]
    pub fee_apr: f64,
    /// Token of its extra rewards, a declared token; required when `reward_apr > 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_token: Option<String>,
    /// APR `g_i` of its token rewards on the allocated stake, a fraction a year in [0, 1].
    #[serde(default)]
    pub reward_apr: f64,
    /// Default annual probability `p_{k,i}` of an operator–AVS slashing, in [0, 1).
    #[serde(default)]
    pub slash_prob: f64,
    /// Severity of its slashings, as a fraction of the slashable stake; required when
    /// any operator–AVS probability or an operator fault can reach this AVS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slash_severity: Option<SeveritySpec>,
    /// Annual probability `q_i` of an AVS-wide incident, in [0, 1).
    #[serde(default)]
    pub incident_prob: f64,
    /// Severity of an incident, one draw shared by all operators; required when
    /// `incident_prob > 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_severity: Option<SeveritySpec>,
    /// Probability `v_i` that a slashing request is vetoed, in [0, 1].
    #[serde(default)]
    pub veto_prob: f64,
}

/// `[[operator]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSpec {
    /// Operator name, unique.
    pub name: String,
    /// Share `w_k` of the position, in [0, 1]; the weights sum to 1.
    pub weight: f64,
    /// Commission `c_k` on restaking rewards, in [0, 1] (EigenLayer's default is 0.10).
    #[serde(default = "default_commission")]
    pub commission: f64,
    /// Annual probability `f_k` of an operator-wide fault, in [0, 1).
    #[serde(default)]
    pub fault_prob: f64,
    /// AVS name → allocation `a_{k,i}` in [0, 1].
    #[serde(default)]
    pub allocations: BTreeMap<String, f64>,
    /// AVS name → this operator's `p_{k,i}`, overriding the AVS's `slash_prob`; only for
    /// AVSs the operator is allocated to.
    #[serde(default)]
    pub slash_probs: BTreeMap<String, f64>,
}

fn default_commission() -> f64 {
    0.10
}

/// `[report]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Loss levels `x` (fractions of principal, > 0, no duplicates) for the rows
    /// `prob_loss_gt_<x>`.
    #[serde(default)]
    pub loss_thresholds: Vec<f64>,
}

/// `[simulation]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationSpec {
    /// Number of paths, in [1, [`MAX_PATHS`]]; default 1,000,000.
    #[serde(default = "default_paths")]
    pub paths: u64,
    /// Seed of the generator; default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Spacing of the fan-chart checkpoints in days, > 0; default 30.
    #[serde(default = "default_checkpoint_days")]
    pub checkpoint_days: f64,
}

impl Default for SimulationSpec {
    fn default() -> Self {
        Self {
            paths: default_paths(),
            seed: default_seed(),
            checkpoint_days: default_checkpoint_days(),
        }
    }
}

fn default_paths() -> u64 {
    1_000_000
}
fn default_seed() -> u64 {
    42
}
fn default_checkpoint_days() -> f64 {
    30.0
}

/// A severity or discount distribution on [0, 1] (`docs/model.md#a-path`), tagged by `dist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum SeveritySpec {
    /// Always `value`, in [0, 1].
    Fixed {
        /// The severity.
        value: f64,
    },
    /// Uniform on `[min, max]`, `0 <= min <= max <= 1`.
    Uniform {
        /// Lower end.
        min: f64,
        /// Upper end.
        max: f64,
    },
    /// `min + (max - min) B` with `B ~ Beta(alpha, beta)`, shapes > 0; `min` and `max`
    /// default to 0 and 1.
    Beta {
        /// First shape `alpha` > 0.
        alpha: f64,
        /// Second shape `beta` > 0.
        beta: f64,
        /// Lower end of the scaled support, default 0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Upper end of the scaled support, default 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
}

impl SeveritySpec {
    /// Mean of the distribution, a fraction in [0, 1].
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Fixed { value } => value,
            Self::Uniform { min, max } => 0.5 * (min + max),
            Self::Beta {
                alpha,
                beta,
                min,
                max,
            } => {
                let (lo, hi) = (min.unwrap_or(0.0), max.unwrap_or(1.0));
                lo + (hi - lo) * alpha / (alpha + beta)
            }
        }
    }

    /// Checks the distribution's parameters, naming `field` in an error.
    ///
    /// # Errors
    /// [`ScenarioError::Invalid`] for an end outside [0, 1], ends out of order, or a
    /// beta shape that is not > 0.
    pub(crate) fn check_at(&self, field: &str) -> Result<(), ScenarioError> {
        let unit = |name: &str, x: f64| -> Result<(), ScenarioError> {
            if x.is_finite() && (0.0..=1.0).contains(&x) {
                Ok(())
            } else {
                Err(invalid(
                    format!("{field}.{name}"),
                    format!("must be in [0, 1], got {x:?}"),
                ))
            }
        };
        match *self {
            Self::Fixed { value } => unit("value", value),
            Self::Uniform { min, max } => {
                unit("min", min)?;
                unit("max", max)?;
                ordered(field, min, max)
            }
            Self::Beta {
                alpha,
                beta,
                min,
                max,
            } => {
                for (name, shape) in [("alpha", alpha), ("beta", beta)] {
                    if !(shape.is_finite() && shape > 0.0) {
                        return Err(invalid(
                            format!("{field}.{name}"),
                            format!("a beta shape must be > 0, got {shape:?}"),
                        ));
                    }
                }
                let (lo, hi) = (min.unwrap_or(0.0), max.unwrap_or(1.0));
                unit("min", lo)?;
                unit("max", hi)?;
                ordered(field, lo, hi)
            }
        }
    }
}

fn ordered(field: &str, min: f64, max: f64) -> Result<(), ScenarioError> {
    if min <= max {
        Ok(())
    } else {
        Err(invalid(
            format!("{field}.min"),
            format!("must not exceed max ({min} > {max})"),
        ))
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A checked scenario: every value lies in its model range and every name it refers
/// to is declared. Build it with [`Scenario::from_toml`] or `Scenario::try_from(spec)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    spec: ScenarioSpec,
}

impl Scenario {
    /// Parses and checks a scenario file's text.
    ///
    /// # Errors
    /// [`ScenarioError::Parse`] for TOML syntax, unknown keys, missing keys or wrong
    /// types (with line and column); [`ScenarioError::Invalid`] naming the field for a
    /// value outside its range or an undeclared name.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let spec: ScenarioSpec = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            message: e.to_string(),
        })?;
        Self::try_from(spec).map_err(|e| match e {
            ScenarioError::Invalid { field, message } => {
                let message = match locate(text, &field) {
                    Some((line, column)) => format!("{message} (line {line}, column {column})"),
                    None => message,
                };
                ScenarioError::Invalid { field, message }
            }
            other => other,
        })
    }

    /// The scenario as written, after the checks.
    pub fn spec(&self) -> &ScenarioSpec {
        &self.spec
    }

    /// Horizon `T` in years (`horizon_days / 365`).
    pub fn horizon_years(&self) -> f64 {
        self.spec.position.horizon_days / crate::DAYS_PER_YEAR
    }
}

/// `keys` as a field path: a TOML dotted key, each key bare when it is made of ASCII
/// letters, digits, `-` and `_`, else quoted as a TOML basic string
/// (`operator."ether.fi-1 - Pier Two".fault_prob`). [`field_path_keys`] reads it back.
/// The one grammar of the field paths of `sweep --set`, of error messages
/// ([`ScenarioError::Invalid`]) and of `calibrate`.
pub fn field_path<S: AsRef<str>>(keys: &[S]) -> String {
    keys.iter()
        .map(|k| {
            let k = k.as_ref();
            if !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                k.to_string()
            } else {
                let mut quoted = String::from('"');
                for c in k.chars() {
                    match c {
                        '"' => quoted.push_str("\\\""),
                        '\\' => quoted.push_str("\\\\"),
                        c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
                        c => quoted.push(c),
                    }
                }
                quoted.push('"');
                quoted
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The keys of a field path, read by TOML's own dotted-key grammar: bare keys
/// (`avs.EigenDA.slash_prob`), quoted keys for names with dots, spaces or other
/// characters (`operator."ether.fi-1 - Pier Two".fault_prob`), literal keys (`'...'`).
///
/// # Errors
/// A message saying how to quote, when `path` is not one dotted key.
pub fn field_path_keys(path: &str) -> Result<Vec<String>, String> {
    let quote_hint = "write it as a TOML dotted key, quoting names that hold dots, spaces or other characters: operator.\"ether.fi-1 - Pier Two\".fault_prob";
    let doc: toml::Table = toml::from_str(&format!("{path} = 0"))
        .map_err(|_| format!("{path:?} is not a field path: {quote_hint}"))?;
    let mut keys = Vec::new();
    let mut table = &doc;
    loop {
        let mut entries = table.iter();
        let (Some((key, value)), None) = (entries.next(), entries.next()) else {
            return Err(format!("{path:?} is not one field path: {quote_hint}"));
        };
        keys.push(key.clone());
        match value {
            toml::Value::Table(inner) => table = inner,
            toml::Value::Integer(0) => return Ok(keys),
            _ => return Err(format!("{path:?} is not a field path: {quote_hint}")),
        }
    }
}

/// Where the field `field` (a field path, [`field_path`]; after an array of tables the
/// key is an element's `name`, an incentive's `token`) is written in `text`, as a
/// 1-based line and column: the value if present, else the nearest enclosing table or
/// element found. `None` when the text does not parse or the path leads nowhere.
fn locate(text: &str, field: &str) -> Option<(usize, usize)> {
    use toml::de::{DeTable, DeValue};
    type Node<'a, 'i> = &'a toml::Spanned<DeValue<'i>>;

    /// Descends into `table` along `keys`: a key names a table's entry, and after an
    /// array of tables an element by its `name` (or `token`).
    fn descend<'a, 'i>(table: &'a DeTable<'i>, keys: &[String]) -> Option<Node<'a, 'i>> {
        let (first, rest) = keys.split_first()?;
        let (_, value) = table.iter().find(|(k, _)| k.get_ref().as_ref() == first)?;
        match (value.get_ref(), rest) {
            (_, []) => Some(value),
            (DeValue::Table(inner), rest) => descend(inner, rest).or(Some(value)),
            (DeValue::Array(entries), [id, rest @ ..]) => {
                let named = |e: &&toml::Spanned<DeValue<'_>>| match e.get_ref() {
                    DeValue::Table(t) => t.iter().any(|(k, v)| {
                        (k.get_ref() == "name" || k.get_ref() == "token")
                            && matches!(v.get_ref(), DeValue::String(s) if s == id)
                    }),
                    _ => false,
                };
                let entry = entries.iter().find(named)?;
                match entry.get_ref() {
                    DeValue::Table(t) if !rest.is_empty() => descend(t, rest).or(Some(entry)),
                    _ => Some(entry),
                }
            }
            _ => Some(value),
        }
    }

    let root = DeTable::parse(text).ok()?;
    let keys = field_path_keys(field).ok()?;
    let span = descend(root.get_ref(), &keys)?.span();
    let before = &text[..span.start];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    Some((line, column))
}

impl TryFrom<ScenarioSpec> for Scenario {
    type Error = ScenarioError;

    /// Checks every field of `spec` (see the field docs for the ranges).
    ///
    /// # Errors
    /// [`ScenarioError::Invalid`] naming the first field found wrong.
    fn try_from(spec: ScenarioSpec) -> Result<Self, ScenarioError> {
        validate(&spec)?;
        Ok(Self { spec })
    }
}

fn in_range(field: &str, x: f64, lo: f64, hi: f64) -> Result<(), ScenarioError> {
    if x.is_finite() && x >= lo && x <= hi {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!(
                "must be in [{lo:?}, {hi:?}], got {x:?}{}",
                percent_hint(x, hi)
            ),
        ))
    }
}

/// For a fraction written as a percent (a value above 1 where the range ends at 1 or
/// below): the hint `: 5 is 500%; did you mean 0.05?`.
fn percent_hint(x: f64, hi: f64) -> String {
    if hi <= 1.0 && x > 1.0 && x <= 100.0 {
        format!(
            " ({x} is {}%, rates and probabilities are fractions: did you mean {}?)",
            100.0 * x,
            x / 100.0
        )
    } else {
        String::new()
    }
}

/// A rate a year that is a fraction (`fee_apr`, `reward_apr`, an incentive's `apr`):
/// in [0, 1], 100% a year at most.
fn annual_rate(field: &str, x: f64) -> Result<(), ScenarioError> {
    in_range(field, x, 0.0, 1.0)
}

/// A Poisson source's annual probability: in [0, 1), since `p = 1` is an infinite
/// intensity (`docs/model.md#a-path`).
fn poisson_prob(field: &str, p: f64) -> Result<(), ScenarioError> {
    if p.is_finite() && (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!(
                "an annual event probability must be in [0, 1), got {p:?}{}",
                percent_hint(p, 1.0)
            ),
        ))
    }
}

fn severity_if(
    field: &str,
    needed: bool,
    severity: &Option<SeveritySpec>,
    why: &str,
) -> Result<(), ScenarioError> {
    match severity {
        Some(s) => s.check_at(field),
        None if needed => Err(invalid(field, format!("is required when {why}"))),
        None => Ok(()),
    }
}

/// Longest name (bytes) of a scenario, AVS, operator or token: names become folder
/// names, CSV cells, plot labels and column names (`allocation_<AVS>`).
pub const MAX_NAME_BYTES: usize = 128;

/// A name: not empty, at most [`MAX_NAME_BYTES`] bytes, no control character (names
/// reach terminals, SVGs and CSVs), no leading or trailing whitespace (a spreadsheet
/// would drop it, so it could not round-trip).
fn check_name(field: &str, name: &str) -> Result<(), ScenarioError> {
    let problem = if name.is_empty() {
        "must not be empty".to_string()
    } else if name.len() > MAX_NAME_BYTES {
        format!(
            "is {} bytes long, at most {MAX_NAME_BYTES} are allowed",
            name.len()
        )
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        format!("must not contain control characters, found {c:?} in {name:?}")
    } else if name.trim() != name {
        format!("must not start or end with whitespace, got {name:?}")
    } else {
        return Ok(());
    };
    Err(invalid(field, problem))
}

/// A name that becomes a folder name: letters, digits, `-`, `_` and `.`, not starting
/// with `.`.
pub(crate) fn check_folder_name(field: &str, name: &str) -> Result<(), ScenarioError> {
    if name.is_empty()
        || name.starts_with('.')
        || name.len() > MAX_NAME_BYTES
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(invalid(
            field,
            format!(
                "must be letters, digits, '-', '_' or '.' (it names an output folder), not starting with '.', got {name:?}"
            ),
        ));
    }
    Ok(())
}

fn unique_names<'a>(
    what: &str,
    names: impl Iterator<Item = &'a String>,
) -> Result<BTreeSet<&'a str>, ScenarioError> {
    let mut seen = BTreeSet::new();
    for name in names {
        let field = field_path(&[what, name.as_str(), "name"]);
        check_name(&field, name)?;
        if !seen.insert(name.as_str()) {
            return Err(invalid(field, format!("duplicate name {name:?}")));
        }
    }
    Ok(seen)
}

fn validate(spec: &ScenarioSpec) -> Result<(), ScenarioError> {
    check_name("name", &spec.name)?;
    if let Some(c) = spec
        .description
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(invalid(
            "description",
            format!("must not contain control characters, found {c:?}"),
        ));
    }
    check_folder_name("name", &spec.name)?;
    let pos = &spec.position;
    // Bounded below so that every derived quantity (intensities times the horizon in
    // years, ETH amounts per path, V/P) stays a normal, finite double.
    in_range(
        "position.principal_eth",
        pos.principal_eth,
        MIN_PRINCIPAL_ETH,
        1e15,
    )?;
    in_range(
        "position.horizon_days",
        pos.horizon_days,
        MIN_HORIZON_DAYS,
        36_500.0,
    )?;

    let base = &spec.base;
    in_range("base.apr_mean", base.apr_mean, 0.0, 0.999)?;
    in_range("base.apr_sd", base.apr_sd, 0.0, 0.999)?;
    in_range("base.fee", base.fee, 0.0, 1.0)?;
    poisson_prob("base.slash_prob", base.slash_prob)?;
    severity_if(
        "base.slash_severity",
        base.slash_prob > 0.0,
        &base.slash_severity,
        "base.slash_prob > 0",
    )?;

    match (pos.route, &spec.liquid) {
        (Route::Native, Some(_)) => {
            return Err(invalid(
                "liquid",
                "a [liquid] table is only allowed with position.route = \"liquid\"",
            ));
        }
        (Route::Liquid, None) => {
            return Err(invalid(
                "liquid",
                "position.route = \"liquid\" needs a [liquid] table",
            ));
        }
        (_, Some(liquid)) => {
            in_range("liquid.reward_fee", liquid.reward_fee, 0.0, 1.0)?;
            in_range("liquid.depeg_prob", liquid.depeg_prob, 0.0, 1.0)?;
            severity_if(
                "liquid.depeg_discount",
                liquid.exit == ExitMode::Market && liquid.depeg_prob > 0.0,
                &liquid.depeg_discount,
                "liquid.exit = \"market\" and liquid.depeg_prob > 0",
            )?;
        }
        (Route::Native, None) => {}
    }

    poisson_prob("protocol.exploit_prob", spec.protocol.exploit_prob)?;
    severity_if(
        "protocol.exploit_severity",
        spec.protocol.exploit_prob > 0.0,
        &spec.protocol.exploit_severity,
        "protocol.exploit_prob > 0",
    )?;

    let tokens = unique_names("token", spec.tokens.iter().map(|t| &t.name))?;
    let years = pos.horizon_days / crate::DAYS_PER_YEAR;
    for t in &spec.tokens {
        let f = field_path(&["token", t.name.as_str()]);
        in_range(&format!("{f}.price_eth"), t.price_eth, 1e-12, 1e12)?;
        in_range(&format!("{f}.drift"), t.drift, -10.0, 10.0)?;
        in_range(&format!("{f}.volatility"), t.volatility, 0.0, 10.0)?;
        // ln S_T = ln S_0 + (mu - sigma^2/2) T + sigma W_T: its reach over the horizon, 40
        // sd of W_T (never exceeded in 1e12 paths) either way, must stay within the
        // doubles' ~±708 (a price and its product with a principal of 1e15 ETH).
        let drift_term = (t.drift - 0.5 * t.volatility * t.volatility) * years;
        let reach = drift_term.abs() + 40.0 * t.volatility * years.sqrt();
        if t.price_eth.ln().abs() + reach > MAX_LOG_PRICE {
            let field = if t.volatility * t.volatility * years > t.drift.abs() * years {
                "volatility"
            } else {
                "drift"
            };
            return Err(invalid(
                format!("{f}.{field}"),
                format!(
                    "over a horizon of {} days the token price can reach e^±{:.0} ETH, beyond what a double holds: lower the drift or the volatility, or shorten the horizon",
                    pos.horizon_days,
                    t.price_eth.ln().abs() + reach
                ),
            ));
        }
    }
    for inc in &spec.incentives {
        if !tokens.contains(inc.token.as_str()) {
            return Err(invalid(
                format!("{}.token", field_path(&["incentive", inc.token.as_str()])),
                format!("token {:?} is not declared in a [[token]] table", inc.token),
            ));
        }
        annual_rate(
            &format!("{}.apr", field_path(&["incentive", inc.token.as_str()])),
            inc.apr,
        )?;
    }

    let avs_names = unique_names("avs", spec.avs.iter().map(|a| &a.name))?;
    for a in &spec.avs {
        let f = field_path(&["avs", a.name.as_str()]);
        annual_rate(&format!("{f}.fee_apr"), a.fee_apr)?;
        annual_rate(&format!("{f}.reward_apr"), a.reward_apr)?;
        match &a.reward_token {
            Some(tok) if !tokens.contains(tok.as_str()) => {
                return Err(invalid(
                    format!("{f}.reward_token"),
                    format!("token {tok:?} is not declared in a [[token]] table"),
                ));
            }
            None if a.reward_apr > 0.0 => {
                return Err(invalid(
                    format!("{f}.reward_token"),
                    "is required when reward_apr > 0",
                ));
            }
            _ => {}
        }
        poisson_prob(&format!("{f}.slash_prob"), a.slash_prob)?;
        poisson_prob(&format!("{f}.incident_prob"), a.incident_prob)?;
        in_range(&format!("{f}.veto_prob"), a.veto_prob, 0.0, 1.0)?;
        let reachable = a.slash_prob > 0.0
            || spec.operators.iter().any(|o| {
                o.allocations.contains_key(&a.name)
                    && (o.fault_prob > 0.0 || o.slash_probs.get(&a.name).is_some_and(|p| *p > 0.0))
            });
        severity_if(
            &format!("{f}.slash_severity"),
            reachable,
            &a.slash_severity,
            "a slashing or an operator fault can reach this AVS",
        )?;
        severity_if(
            &format!("{f}.incident_severity"),
            a.incident_prob > 0.0,
            &a.incident_severity,
            "incident_prob > 0",
        )?;
    }

    if spec.operators.is_empty() {
        return Err(invalid("operator", "at least one [[operator]] is required"));
    }
    unique_names("operator", spec.operators.iter().map(|o| &o.name))?;
    let mut weight_sum = 0.0;
    for o in &spec.operators {
        let f = field_path(&["operator", o.name.as_str()]);
        in_range(&format!("{f}.weight"), o.weight, 0.0, 1.0)?;
        weight_sum += o.weight;
        in_range(&format!("{f}.commission"), o.commission, 0.0, 1.0)?;
        poisson_prob(&format!("{f}.fault_prob"), o.fault_prob)?;
        let mut alloc_sum = 0.0;
        for (avs, a) in &o.allocations {
            let fa = format!("{f}.allocations.{}", field_path(&[avs]));
            if !avs_names.contains(avs.as_str()) {
                return Err(invalid(
                    fa,
                    format!("AVS {avs:?} is not declared in an [[avs]] table"),
                ));
            }
            in_range(&fa, *a, 0.0, 1.0)?;
            alloc_sum += a;
        }
        if pos.stake_mode == StakeMode::Unique && alloc_sum > 1.0 + SUM_TOLERANCE {
            return Err(invalid(
                format!("{f}.allocations"),
                format!(
                    "under stake_mode = \"unique\" the allocations are magnitudes of one stake and must sum to at most 1, got {alloc_sum:?}"
                ),
            ));
        }
        for (avs, p) in &o.slash_probs {
            let fp = format!("{f}.slash_probs.{}", field_path(&[avs]));
            if !o.allocations.contains_key(avs) {
                return Err(invalid(
                    fp,
                    format!("operator has no allocation to AVS {avs:?}"),
                ));
            }
            poisson_prob(&fp, *p)?;
        }
    }
    if (weight_sum - 1.0).abs() > SUM_TOLERANCE {
        return Err(invalid(
            "operator.weight",
            format!("operator weights must sum to 1, got {weight_sum:?}"),
        ));
    }

    for (i, x) in spec.report.loss_thresholds.iter().enumerate() {
        if !(x.is_finite() && *x > 0.0) {
            return Err(invalid(
                format!("report.loss_thresholds[{i}]"),
                format!("must be > 0, got {x:?}"),
            ));
        }
        if spec.report.loss_thresholds[..i].contains(x) {
            return Err(invalid(
                format!("report.loss_thresholds[{i}]"),
                format!("duplicate threshold {x}"),
            ));
        }
    }
    crate::leverage::validate(spec)?;
    crate::stress::validate(spec)?;
    let sim = &spec.simulation;
    check_paths("simulation.paths", sim.paths)?;
    if !(sim.checkpoint_days.is_finite() && sim.checkpoint_days > 0.0) {
        return Err(invalid(
            "simulation.checkpoint_days",
            format!("must be > 0, got {:?}", sim.checkpoint_days),
        ));
    }
    let max = crate::reduce::MAX_SKETCHED_CHECKPOINTS;
    if pos.horizon_days / sim.checkpoint_days > max as f64 {
        return Err(invalid(
            "simulation.checkpoint_days",
            format!(
                "gives {:.0} checkpoints over the horizon; a run keeps a fan-chart sketch per checkpoint, at most {max}: use a larger checkpoint_days",
                (pos.horizon_days / sim.checkpoint_days).ceil()
            ),
        ));
    }
    Ok(())
}

/// Smallest principal, ETH: one gwei.
pub const MIN_PRINCIPAL_ETH: f64 = 1e-9;

/// Shortest horizon, days (about 86 seconds).
pub const MIN_HORIZON_DAYS: f64 = 1e-3;

/// Largest `|ln|` of a token price in ETH the engine accepts over a horizon: e^600 leaves
/// room for a principal of 1e15 ETH (e^35) below the largest double (e^709.8).
const MAX_LOG_PRICE: f64 = 600.0;

/// Checks a path count: in [1, [`MAX_PATHS`]].
///
/// # Errors
/// [`ScenarioError::Invalid`] naming `field`.
pub fn check_paths(field: &str, paths: u64) -> Result<(), ScenarioError> {
    check_paths_within(field, paths, MAX_PATHS)
}

/// Checks a path count: in [1, `max`].
///
/// # Errors
/// [`ScenarioError::Invalid`] naming `field`.
pub fn check_paths_within(field: &str, paths: u64, max: u64) -> Result<(), ScenarioError> {
    if (1..=max).contains(&paths) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be in [1, {max}], got {paths}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n[position]\nprincipal_eth = -1.0\n\n[[avs]]\nname = \"A.v2\"\nslash_prob = 2.0\n[[operator]]\nname = \"op [x]\"\nallocations = { \"A.v2\" = 0.5 }\n";

    #[test]
    fn fields_are_located_in_the_text() {
        assert_eq!(locate(TEXT, "position.principal_eth"), Some((3, 17)));
        assert_eq!(locate(TEXT, "avs.\"A.v2\".slash_prob"), Some((7, 14)));
        assert_eq!(
            locate(TEXT, "operator.\"op [x]\".allocations.\"A.v2\""),
            Some((10, 26))
        );
        // A missing key points at its table.
        assert_eq!(
            locate(TEXT, "avs.\"A.v2\".slash_severity").map(|l| l.0),
            Some(5)
        );
        assert_eq!(locate(TEXT, "nothing.here"), None);
    }

    #[test]
    fn field_paths_quote_what_toml_needs_and_read_back() {
        assert_eq!(
            field_path(&["operator", "ether.fi-1 - Pier Two", "fault_prob"]),
            "operator.\"ether.fi-1 - Pier Two\".fault_prob"
        );
        assert_eq!(
            field_path(&["avs", "EigenDA", "slash_prob"]),
            "avs.EigenDA.slash_prob"
        );
        for name in [
            "A.v2",
            "op [x]",
            "q\"uote",
            "back\\slash",
            "",
            "tab\there",
            "é",
        ] {
            let keys = ["avs", name, "slash_prob"];
            let path = field_path(&keys);
            assert_eq!(field_path_keys(&path).unwrap(), keys, "{path}");
        }
    }

    #[test]
    fn validation_errors_carry_the_location() {
        let err = Scenario::from_toml(
            "name = \"x\"\n[position]\nprincipal_eth = 0.0\nroute = \"native\"\nhorizon_days = 1\n[base]\napr_mean = 0.0\n[[operator]]\nname = \"a\"\nweight = 1.0\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "position.principal_eth: must be in [1e-9, 1000000000000000.0], got 0.0 (line 3, column 17)"
        );
    }

    #[test]
    fn rates_written_as_percents_are_refused_with_the_fraction_suggested() {
        let base = "name = \"x\"\n[position]\nprincipal_eth = 1.0\nroute = \"native\"\nhorizon_days = 365\n[base]\napr_mean = 0.03\n[[token]]\nname = \"T\"\nprice_eth = 1.0\n[[avs]]\nname = \"A\"\n[[operator]]\nname = \"o\"\nweight = 1.0\n";
        for (extra, field, hint) in [
            (
                "[[incentive]]\ntoken = \"T\"\napr = 5\n",
                "incentive.T.apr",
                "did you mean 0.05?",
            ),
            ("", "avs.A.fee_apr", "did you mean 0.02?"),
            ("", "base.fee", "did you mean 0.1?"),
        ] {
            let text = match field {
                "avs.A.fee_apr" => base.replace("name = \"A\"\n", "name = \"A\"\nfee_apr = 2\n"),
                "base.fee" => base.replace("apr_mean = 0.03\n", "apr_mean = 0.03\nfee = 10\n"),
                _ => format!("{base}{extra}"),
            };
            let e = Scenario::from_toml(&text).unwrap_err().to_string();
            assert!(e.starts_with(field) && e.contains(hint), "{e}");
        }
        // A volatility above 1 is a legitimate value, not a percent.
        let ok = base.replace("price_eth = 1.0\n", "price_eth = 1.0\nvolatility = 1.2\n");
        assert!(Scenario::from_toml(&ok).is_ok());
    }
}

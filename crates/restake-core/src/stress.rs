//! The systematic factor (`[systematic]`) and stress tests (`[[stress]]`): what a file
//! says, the checks, and the compiled forms the path reads (`docs/model.md#systematic-factor`,
//! `docs/model.md#stress-tests`).

use serde::{Deserialize, Serialize};

use crate::error::ScenarioError;
use crate::model::ContributionKind;
use crate::scenario::{ExitMode, Route, ScenarioSpec, SeveritySpec, field_path};

/// `[systematic]`: the factor correlations of the one-factor Gaussian copula
/// (`docs/model.md#systematic-factor`). Each is in [0, 1); a kind's own value overrides
/// `rho` for its sources.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystematicSpec {
    /// Factor correlation of every source, default 0.
    #[serde(default)]
    pub rho: f64,
    /// Of the operator–AVS slashings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avs_slashing: Option<f64>,
    /// Of the AVS-wide incidents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avs_incident: Option<f64>,
    /// Of the operator-wide faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_fault: Option<f64>,
    /// Of the beacon-chain slashings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beacon: Option<f64>,
    /// Of the protocol exploit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_exploit: Option<f64>,
    /// Of the market-exit depeg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depeg: Option<f64>,
}

impl SystematicSpec {
    /// The correlation of the sources of `kind` (one of the six risk kinds; `rho` for
    /// any other).
    pub fn rho_of(&self, kind: ContributionKind) -> f64 {
        let own = match kind {
            ContributionKind::AvsSlashing => self.avs_slashing,
            ContributionKind::AvsIncident => self.avs_incident,
            ContributionKind::OperatorFault => self.operator_fault,
            ContributionKind::Beacon => self.beacon,
            ContributionKind::ProtocolExploit => self.protocol_exploit,
            ContributionKind::Depeg => self.depeg,
            _ => None,
        };
        own.unwrap_or(self.rho)
    }

    fn fields(&self) -> [(&'static str, Option<f64>); 7] {
        [
            ("rho", Some(self.rho)),
            ("avs_slashing", self.avs_slashing),
            ("avs_incident", self.avs_incident),
            ("operator_fault", self.operator_fault),
            ("beacon", self.beacon),
            ("protocol_exploit", self.protocol_exploit),
            ("depeg", self.depeg),
        ]
    }
}

/// The kind of a forced event, named as the `kind` column of `contributions.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An operator–AVS slashing (`avs` and `operator`).
    AvsSlashing,
    /// An AVS-wide incident (`avs`).
    AvsIncident,
    /// An operator-wide fault (`operator`): one request per AVS it is allocated to.
    OperatorFault,
    /// A beacon-chain slashing of an operator's validators (`operator`).
    Beacon,
    /// A restaking-protocol or LRT contract exploit.
    ProtocolExploit,
    /// The market-exit depeg: a haircut at the horizon.
    Depeg,
    /// A depeg episode of a levered position's oracle (`[leverage]`): the market price
    /// at a discount from `day` for `days` days (`docs/model.md#leverage`). Only a market
    /// oracle sees it.
    DepegEpisode,
}

impl EventKind {
    /// The contribution row kind of its losses.
    pub fn contribution_kind(self) -> ContributionKind {
        match self {
            Self::AvsSlashing => ContributionKind::AvsSlashing,
            Self::AvsIncident => ContributionKind::AvsIncident,
            Self::OperatorFault => ContributionKind::OperatorFault,
            Self::Beacon => ContributionKind::Beacon,
            Self::ProtocolExploit => ContributionKind::ProtocolExploit,
            Self::Depeg | Self::DepegEpisode => ContributionKind::Depeg,
        }
    }

    /// The `kind` text of a file, as in `contributions.csv` but for `depeg_episode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DepegEpisode => "depeg_episode",
            other => other.contribution_kind().as_str(),
        }
    }
}

/// One forced event of a stress test: it happens on every path, is never vetoed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForcedEventSpec {
    /// What happens.
    pub kind: EventKind,
    /// The AVS (`avs_slashing`, `avs_incident`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avs: Option<String>,
    /// The operator (`avs_slashing`, `operator_fault`, `beacon`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Day of the event in [0, horizon_days]; omitted: uniform over the horizon on each
    /// path. Not for `depeg`, which happens at the exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<f64>,
    /// Its severity (the depeg's discount); omitted: a draw from the source's own law.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<SeveritySpec>,
    /// Length in days of a `depeg_episode`, in (0, 3650]; omitted: `liquid.depeg_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<f64>,
}

/// The kinds a `[[stress.pick]]` may force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PickKind {
    /// An incident of each AVS picked.
    AvsIncident,
    /// A slashing of every operator allocated to each AVS picked, each with its own
    /// severity.
    AvsSlashing,
}

impl PickKind {
    /// The kind of the events it forces.
    pub fn event_kind(self) -> EventKind {
        match self {
            Self::AvsIncident => EventKind::AvsIncident,
            Self::AvsSlashing => EventKind::AvsSlashing,
        }
    }
}

/// `[[stress.pick]]`: `count` distinct AVSs of `among`, drawn uniformly without
/// replacement on each path, each with a forced event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickSpec {
    /// What happens to each AVS picked.
    pub kind: PickKind,
    /// The group, distinct declared AVS names; omitted: every AVS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub among: Option<Vec<String>>,
    /// How many AVSs, in [1, size of the group].
    pub count: u32,
    /// Day of the events in [0, horizon_days]; omitted: each uniform over the horizon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<f64>,
    /// Severity of each event; omitted: each AVS's own law.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<SeveritySpec>,
}

/// `[[stress]]`: the scenario conditioned on forced events, a held factor, or both
/// (`docs/model.md#stress-tests`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StressSpec {
    /// Name, unique, not `base`; letters, digits, `-`, `_`, `.` (it names a folder).
    pub name: String,
    /// Keep the random risk sources (default); `false`: the forced events only.
    #[serde(default = "keep_random")]
    pub random: bool,
    /// Hold the systematic factor at this `z` in [-10, 10] (needs `[systematic]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor_z: Option<f64>,
    /// Forced events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<ForcedEventSpec>,
    /// Forced events at AVSs picked at random (`[[stress.pick]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pick: Vec<PickSpec>,
}

impl StressSpec {
    /// What the stress forces, in one line: `eigenda-incident: avs_incident of EigenDA
    /// on day 100 (given severity); the random sources kept`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .events
            .iter()
            .map(|e| {
                let target = match (&e.avs, &e.operator) {
                    (Some(a), Some(o)) => format!(" of {a} on {o}"),
                    (Some(a), None) => format!(" of {a}"),
                    (None, Some(o)) => format!(" of {o}"),
                    (None, None) => String::new(),
                };
                let day = match (e.kind, e.day) {
                    (EventKind::Depeg, _) => " at the exit".to_string(),
                    (EventKind::DepegEpisode, day) => {
                        let days = e
                            .days
                            .map_or_else(|| "liquid.depeg_days".to_string(), |d| d.to_string());
                        let from =
                            day.map_or_else(|| "a uniform day".to_string(), |d| format!("day {d}"));
                        format!(" for {days} days from {from}")
                    }
                    (_, Some(d)) => format!(" on day {d}"),
                    (_, None) => " on a uniform day".to_string(),
                };
                let severity = if e.severity.is_some() {
                    " (given severity)"
                } else {
                    ""
                };
                format!("{}{target}{day}{severity}", e.kind.as_str())
            })
            .collect();
        for p in &self.pick {
            let kind = p.kind.event_kind().as_str();
            let group = p
                .among
                .as_ref()
                .map_or_else(|| "every AVS".to_string(), |g| format!("{} AVSs", g.len()));
            parts.push(format!(
                "{kind} at {} of {group}, picked on each path",
                p.count
            ));
        }
        if let Some(z) = self.factor_z {
            parts.push(format!("systematic factor held at z = {z}"));
        }
        parts.push(if self.random {
            "the random sources kept".into()
        } else {
            "no random risk source".into()
        });
        format!("{}: {}", self.name, parts.join("; "))
    }
}

fn keep_random() -> bool {
    true
}

/// Name of the base scenario in `stress.csv`; no stress may take it.
pub const BASE_STRESS_NAME: &str = "base";

/// Largest `|factor_z|`: 10 sd is beyond any year a model of one-year risk speaks of.
pub const MAX_FACTOR_Z: f64 = 10.0;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks `[systematic]` and every `[[stress]]` of `spec`, whose other tables are
/// already checked.
///
/// # Errors
/// [`ScenarioError::Invalid`] naming the first field found wrong.
pub(crate) fn validate(spec: &ScenarioSpec) -> Result<(), ScenarioError> {
    if let Some(sys) = &spec.systematic {
        for (name, value) in sys.fields() {
            if let Some(x) = value
                && !(x.is_finite() && (0.0..1.0).contains(&x))
            {
                return Err(invalid(
                    format!("systematic.{name}"),
                    format!("a factor correlation must be in [0, 1), got {x:?}"),
                ));
            }
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for stress in &spec.stress {
        let f = field_path(&["stress", stress.name.as_str()]);
        crate::scenario::check_folder_name(&format!("{f}.name"), &stress.name)?;
        if stress.name == BASE_STRESS_NAME {
            return Err(invalid(
                format!("{f}.name"),
                "\"base\" names the scenario without stress in stress.csv: choose another name",
            ));
        }
        if !names.insert(stress.name.as_str()) {
            return Err(invalid(
                format!("{f}.name"),
                format!("duplicate name {:?}", stress.name),
            ));
        }
        if let Some(z) = stress.factor_z {
            if !(z.is_finite() && z.abs() <= MAX_FACTOR_Z) {
                return Err(invalid(
                    format!("{f}.factor_z"),
                    format!("must be in [-{MAX_FACTOR_Z}, {MAX_FACTOR_Z}], got {z:?}"),
                ));
            }
            if spec.systematic.is_none() {
                return Err(invalid(
                    format!("{f}.factor_z"),
                    "holds the systematic factor, but the scenario has no [systematic] table",
                ));
            }
        }
        if stress.random
            && stress.factor_z.is_none()
            && stress.events.is_empty()
            && stress.pick.is_empty()
        {
            return Err(invalid(
                f.clone(),
                "changes nothing: give events, a [[stress.pick]], factor_z or random = false",
            ));
        }
        let mut depegs = 0;
        for (i, e) in stress.events.iter().enumerate() {
            check_event(spec, &format!("{f}.events[{i}]"), e)?;
            depegs += usize::from(e.kind == EventKind::Depeg);
        }
        if depegs > 1 {
            return Err(invalid(
                format!("{f}.events"),
                "more than one depeg: a position exits once",
            ));
        }
        for (i, p) in stress.pick.iter().enumerate() {
            check_pick(spec, &format!("{f}.pick[{i}]"), p)?;
        }
    }
    Ok(())
}

/// Index of the AVS named `name`, or an error at `field`.
fn avs_index(spec: &ScenarioSpec, field: &str, name: &str) -> Result<usize, ScenarioError> {
    spec.avs.iter().position(|a| a.name == name).ok_or_else(|| {
        invalid(
            field,
            format!("AVS {name:?} is not declared in an [[avs]] table"),
        )
    })
}

/// Index of the operator named `name`, or an error at `field`.
fn operator_index(spec: &ScenarioSpec, field: &str, name: &str) -> Result<usize, ScenarioError> {
    spec.operators
        .iter()
        .position(|o| o.name == name)
        .ok_or_else(|| {
            invalid(
                field,
                format!("operator {name:?} is not declared in an [[operator]] table"),
            )
        })
}

/// Whether operator `k` has a positive allocation to AVS `i`.
pub(crate) fn allocated(spec: &ScenarioSpec, k: usize, i: usize) -> bool {
    spec.operators[k]
        .allocations
        .get(&spec.avs[i].name)
        .is_some_and(|a| *a > 0.0)
}

/// Checks that AVS `i` can be forced with `kind`: some operator is allocated to it, and
/// it has the law a forced event without its own severity draws from.
fn check_avs_target(
    spec: &ScenarioSpec,
    field: &str,
    i: usize,
    incident: bool,
    severity_given: bool,
) -> Result<(), ScenarioError> {
    let a = &spec.avs[i];
    if !(0..spec.operators.len()).any(|k| allocated(spec, k, i)) {
        return Err(invalid(
            field,
            format!(
                "no operator is allocated to AVS {:?}: a forced event there hits nothing",
                a.name
            ),
        ));
    }
    let (law, key) = if incident {
        (&a.incident_severity, "incident_severity")
    } else {
        (&a.slash_severity, "slash_severity")
    };
    if !severity_given && law.is_none() {
        return Err(invalid(
            field,
            format!(
                "needs a severity: {} is not given",
                field_path(&["avs", a.name.as_str(), key])
            ),
        ));
    }
    Ok(())
}

fn check_day(spec: &ScenarioSpec, field: &str, day: Option<f64>) -> Result<(), ScenarioError> {
    let horizon = spec.position.horizon_days;
    match day {
        Some(d) if !(d.is_finite() && (0.0..=horizon).contains(&d)) => Err(invalid(
            format!("{field}.day"),
            format!("must be in [0, {horizon}] (the horizon in days), got {d:?}"),
        )),
        _ => Ok(()),
    }
}

fn check_event(spec: &ScenarioSpec, f: &str, e: &ForcedEventSpec) -> Result<(), ScenarioError> {
    let kind = e.kind.as_str();
    let (needs_avs, needs_operator) = match e.kind {
        EventKind::AvsSlashing => (true, true),
        EventKind::AvsIncident => (true, false),
        EventKind::OperatorFault | EventKind::Beacon => (false, true),
        EventKind::ProtocolExploit | EventKind::Depeg | EventKind::DepegEpisode => (false, false),
    };
    for (key, needed, given) in [
        ("avs", needs_avs, e.avs.is_some()),
        ("operator", needs_operator, e.operator.is_some()),
    ] {
        if needed && !given {
            return Err(invalid(
                format!("{f}.{key}"),
                format!("is required with kind = {kind:?}"),
            ));
        }
        if given && !needed {
            return Err(invalid(
                format!("{f}.{key}"),
                format!("is not used with kind = {kind:?}"),
            ));
        }
    }
    if let Some(s) = &e.severity {
        s.check_at(&format!("{f}.severity"))?;
    }
    check_day(spec, f, e.day)?;
    if e.days.is_some() && e.kind != EventKind::DepegEpisode {
        return Err(invalid(
            format!("{f}.days"),
            format!("is only used with kind = \"depeg_episode\", not {kind:?}"),
        ));
    }
    let given = e.severity.is_some();
    let law_missing = |key: &str| {
        invalid(
            format!("{f}.severity"),
            format!("is required: {key} is not given"),
        )
    };
    match e.kind {
        EventKind::AvsSlashing | EventKind::AvsIncident => {
            let name = e.avs.as_deref().expect("checked above");
            let i = avs_index(spec, &format!("{f}.avs"), name)?;
            if let Some(op) = &e.operator {
                let k = operator_index(spec, &format!("{f}.operator"), op)?;
                if !allocated(spec, k, i) {
                    return Err(invalid(
                        format!("{f}.operator"),
                        format!("operator {op:?} has no allocation to AVS {name:?}"),
                    ));
                }
            }
            check_avs_target(spec, f, i, e.kind == EventKind::AvsIncident, given)
        }
        EventKind::OperatorFault => {
            let name = e.operator.as_deref().expect("checked above");
            let k = operator_index(spec, &format!("{f}.operator"), name)?;
            let avs: Vec<usize> = (0..spec.avs.len())
                .filter(|i| allocated(spec, k, *i))
                .collect();
            if avs.is_empty() {
                return Err(invalid(
                    format!("{f}.operator"),
                    format!("operator {name:?} has no allocation: a fault hits nothing"),
                ));
            }
            for i in avs {
                check_avs_target(spec, f, i, false, given)?;
            }
            Ok(())
        }
        EventKind::Beacon => {
            operator_index(
                spec,
                &format!("{f}.operator"),
                e.operator.as_deref().expect("checked"),
            )?;
            if !given && spec.base.slash_severity.is_none() {
                return Err(law_missing("base.slash_severity"));
            }
            Ok(())
        }
        EventKind::ProtocolExploit => {
            if !given && spec.protocol.exploit_severity.is_none() {
                return Err(law_missing("protocol.exploit_severity"));
            }
            Ok(())
        }
        EventKind::Depeg => {
            if e.day.is_some() {
                return Err(invalid(
                    format!("{f}.day"),
                    "is not used with kind = \"depeg\": the depeg is the haircut of the exit at the horizon",
                ));
            }
            let market = spec.position.route == Route::Liquid
                && spec
                    .liquid
                    .as_ref()
                    .is_some_and(|l| l.exit == ExitMode::Market);
            if !market {
                return Err(invalid(
                    format!("{f}.kind"),
                    "a depeg needs position.route = \"liquid\" and liquid.exit = \"market\" (a redemption meets no discount)",
                ));
            }
            if !given
                && spec
                    .liquid
                    .as_ref()
                    .is_some_and(|l| l.depeg_discount.is_none())
            {
                return Err(law_missing("liquid.depeg_discount"));
            }
            Ok(())
        }
        EventKind::DepegEpisode => {
            if spec.leverage.is_none() {
                return Err(invalid(
                    format!("{f}.kind"),
                    "a depeg episode moves a lending market's oracle: it needs a [leverage] table (kind = \"depeg\" is the haircut of an unlevered market exit)",
                ));
            }
            let liquid = spec.liquid.as_ref().expect("leverage is liquid");
            match e.days.or(liquid.depeg_days) {
                None => {
                    return Err(invalid(
                        format!("{f}.days"),
                        "is required: liquid.depeg_days is not given",
                    ));
                }
                Some(d) => crate::leverage::check_depeg_days(&format!("{f}.days"), d)?,
            }
            if !given && liquid.depeg_discount.is_none() {
                return Err(law_missing("liquid.depeg_discount"));
            }
            Ok(())
        }
    }
}

fn check_pick(spec: &ScenarioSpec, f: &str, p: &PickSpec) -> Result<(), ScenarioError> {
    let group = pick_group(spec, f, p)?;
    if p.count == 0 || p.count as usize > group.len() {
        return Err(invalid(
            format!("{f}.count"),
            format!(
                "must be in [1, {}] (the AVSs of the group), got {}",
                group.len(),
                p.count
            ),
        ));
    }
    if let Some(s) = &p.severity {
        s.check_at(&format!("{f}.severity"))?;
    }
    check_day(spec, f, p.day)?;
    for i in group {
        check_avs_target(
            spec,
            &format!("{f}.among"),
            i,
            p.kind == PickKind::AvsIncident,
            p.severity.is_some(),
        )?;
    }
    Ok(())
}

/// The AVS indices of a pick's group, in the order given (every AVS when omitted).
fn pick_group(spec: &ScenarioSpec, f: &str, p: &PickSpec) -> Result<Vec<usize>, ScenarioError> {
    match &p.among {
        None => Ok((0..spec.avs.len()).collect()),
        Some(names) => {
            let mut group = Vec::new();
            for (j, name) in names.iter().enumerate() {
                let i = avs_index(spec, &format!("{f}.among[{j}]"), name)?;
                if group.contains(&i) {
                    return Err(invalid(
                        format!("{f}.among[{j}]"),
                        format!("AVS {name:?} is listed twice"),
                    ));
                }
                group.push(i);
            }
            Ok(group)
        }
    }
}

/// `Phi(x)`, the standard normal distribution function, from `erfc` (accurate in both
/// tails).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2)
}

/// `Phi^-1(p)` for `p` in [0, 1] (`-inf` at 0, `inf` at 1).
pub fn normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p)
}

/// Largest argument of `Phi` the conditional intensity is computed at: `1 - Phi(37)` is
/// about 6e-300, an intensity of about 690 a year.
const MAX_PROBIT: f64 = 37.0;

/// A source's annual probability `p` and factor correlation `rho`, ready to condition
/// on the factor (`docs/model.md#systematic-factor`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FactorLaw {
    /// `p`.
    pub prob: f64,
    /// `sqrt(rho)`.
    sqrt_rho: f64,
    /// `1 / sqrt(1 - rho)`.
    inv_sqrt_residual: f64,
    /// `Phi^-1(p)`.
    probit: f64,
}

impl FactorLaw {
    /// The law of a source with annual probability `prob` in [0, 1] and correlation
    /// `rho` in [0, 1).
    pub fn new(prob: f64, rho: f64) -> Self {
        Self {
            prob,
            sqrt_rho: rho.sqrt(),
            inv_sqrt_residual: 1.0 / (1.0 - rho).sqrt(),
            probit: normal_quantile(prob),
        }
    }

    /// The argument of `Phi` in `p(z) = Phi((Phi^-1(p) + sqrt(rho) z) / sqrt(1 - rho))`
    /// (Vasicek 2002).
    fn argument(&self, z: f64) -> f64 {
        (self.probit + self.sqrt_rho * z) * self.inv_sqrt_residual
    }

    /// The annual probability given the factor at `z`, `p(z)`; `p` itself when
    /// `rho = 0`.
    pub fn prob_at(&self, z: f64) -> f64 {
        if self.sqrt_rho == 0.0 || self.prob == 0.0 || self.prob == 1.0 {
            return self.prob;
        }
        normal_cdf(self.argument(z))
    }

    /// The Poisson intensity a year given the factor at `z`, `-ln(1 - p(z))`: exactly
    /// [`crate::model::intensity`]`(p)` when `rho = 0`, and at most about 690 (the
    /// argument of `Phi` is capped at 37).
    pub fn intensity_at(&self, z: f64) -> f64 {
        if self.sqrt_rho == 0.0 || self.prob == 0.0 {
            return crate::model::intensity(self.prob);
        }
        let x = self.argument(z).min(MAX_PROBIT);
        if x < 0.0 {
            -(-normal_cdf(x)).ln_1p()
        } else {
            -normal_cdf(-x).ln()
        }
    }
}

impl crate::Model {
    /// The model of stress test `index` of `scenario`'s `[[stress]]` list: the
    /// scenario's model with the stress's forced events, picks, held factor and
    /// `random` flag (`docs/model.md#stress-tests`). It draws the same random numbers as
    /// [`crate::Model::new`]'s, so that base and stress are compared path by path.
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn for_stress(scenario: &crate::Scenario, index: usize) -> Self {
        use crate::model::{ForcedEpisode, ForcedEvent, ForcedPick, SourceKind, Stress};
        use crate::sampling::Severity;
        let spec = scenario.spec();
        let stress = &spec.stress[index];
        let mut model = Self::new(scenario);
        let mut severities = Vec::new();
        let mut severity = |s: &Option<SeveritySpec>| {
            s.as_ref().map(|s| {
                severities.push(Severity::new(s));
                severities.len() - 1
            })
        };
        let avs = |name: &str| {
            spec.avs
                .iter()
                .position(|a| a.name == name)
                .expect("checked")
        };
        let operator = |name: &str| {
            spec.operators
                .iter()
                .position(|o| o.name == name)
                .expect("checked")
        };
        // The sources of `kind` that hit AVS `i` or operator `k`, as the checks ensured
        // they exist.
        let sources_of =
            |kind: ContributionKind, i: Option<usize>, k: Option<usize>| -> Vec<usize> {
                model
                    .sources
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| {
                        let row = &model.rows[s.row];
                        row.kind == kind
                            && match &s.kind {
                                SourceKind::OperatorAvs { avs, hit } => {
                                    Some(*avs) == i
                                        && k.is_none_or(|k| model.pool_operator[hit.pool] == k)
                                }
                                SourceKind::AvsIncident { avs, .. } => Some(*avs) == i,
                                SourceKind::OperatorFault { .. } | SourceKind::Beacon { .. } => {
                                    Some(row.source.as_str())
                                        == k.map(|k| spec.operators[k].name.as_str())
                                }
                                SourceKind::Exploit => true,
                            }
                    })
                    .map(|(j, _)| j)
                    .collect()
            };
        let time = |day: Option<f64>| day.map(|d| d / crate::DAYS_PER_YEAR);
        let mut events = Vec::new();
        let mut depeg = None;
        let mut episodes = Vec::new();
        for e in &stress.events {
            let i = e.avs.as_deref().map(avs);
            let k = e.operator.as_deref().map(operator);
            let liquid = spec.liquid.as_ref();
            if e.kind == EventKind::DepegEpisode {
                let depth = e
                    .severity
                    .clone()
                    .or_else(|| liquid.and_then(|l| l.depeg_discount.clone()));
                episodes.push(ForcedEpisode {
                    time_years: time(e.day),
                    years: e
                        .days
                        .or(liquid.and_then(|l| l.depeg_days))
                        .expect("checked: an episode has a length")
                        / crate::DAYS_PER_YEAR,
                    depth: severity(&depth).expect("checked: an episode has a depth"),
                });
                continue;
            }
            if e.kind == EventKind::Depeg {
                let law = e
                    .severity
                    .as_ref()
                    .or(spec.liquid.as_ref().and_then(|l| l.depeg_discount.as_ref()))
                    .expect("checked: a depeg has a discount");
                depeg = Some(Severity::new(law));
                continue;
            }
            let kind = e.kind.contribution_kind();
            let sources = sources_of(kind, i, k);
            debug_assert_eq!(sources.len(), 1, "{e:?}");
            events.push(ForcedEvent {
                time_years: time(e.day),
                sources,
                severity: severity(&e.severity),
            });
        }
        let mut picks = Vec::new();
        for p in &stress.pick {
            let group = pick_group(spec, "stress.pick", p).expect("checked");
            let kind = p.kind.event_kind().contribution_kind();
            let slot = severity(&p.severity);
            picks.push(ForcedPick {
                group: group
                    .into_iter()
                    .map(|i| ForcedEvent {
                        time_years: time(p.day),
                        sources: sources_of(kind, Some(i), None),
                        severity: slot,
                    })
                    .collect(),
                count: p.count as usize,
            });
        }
        model.stress = Some(Stress {
            random: stress.random,
            factor_z: stress.factor_z,
            events,
            picks,
            depeg,
            episodes,
            severities,
        });
        model
    }
}

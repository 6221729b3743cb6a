//! `restake-mc calibrate`: reads the real data files, runs the estimators of
//! `restake_core::calibrate` and prints every calibrated parameter of the presets, one
//! line each: `<preset> <field> = <value>  # <estimator>; <sample window>`, for every
//! preset whose comments say `calibrate`; `--update` writes them into the presets.
//!
//! Values are rounded to 4 significant digits (weights to 6 decimals, summing to 1
//! exactly), and the presets carry exactly the printed values, so that a test can check
//! that the presets are what the data say.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, NaiveDate};
use restake_core::calibrate::{
    RewardPeriod, annual_probability, fit_gbm, fit_growth, fit_scaled_beta, slashed_validator_loss,
    token_rate_per_eth_year, weights,
};
use serde::Deserialize;

use crate::BadInput;

/// Fee `phi` on base and restaking rewards of ether.fi and Renzo (docs/model.md#calibration-references).
const LRT_FEE: f64 = 0.10;
/// EigenLayer's default operator commission (docs/model.md#calibration-references).
const COMMISSION: f64 = 0.10;
/// Block length of the base-APR spread estimator, days.
const APR_BLOCK_DAYS: f64 = 30.0;
/// The beacon-chain deposit contract's strategy address in EigenLayer (native ETH).
const BEACON_STRATEGY: &str = "0xbeac0eeeeeeeeeeeeeeeeeeeeeeeeeeeeeebeac0";
/// ezETH depeg of 24 April 2024 (docs/model.md#calibration-references): lowest DEX price 0.22 ETH, about 13%
/// below on aggregate prices; largest market discount seen by one risk manager: 3.75%.
const EZETH_DEX_LOW_ETH: f64 = 0.22;
const EZETH_AGGREGATE_DISCOUNT: f64 = 0.13;
const EZETH_TYPICAL_MAX_DISCOUNT: f64 = 0.0375;

/// The Launchnodes incident of October 2023 (docs/model.md#calibration-references): 20
/// validators (640 ETH) slashed, 20.04 ETH of initial penalties, 28.46 ETH with the
/// penalties and missed rewards until withdrawal.
const LAUNCHNODES_ETH: f64 = 640.0;
const LAUNCHNODES_INITIAL_ETH: f64 = 20.04;
const LAUNCHNODES_TOTAL_ETH: f64 = 28.46;
/// ETH staked, for Electra's correlation penalty (docs/model.md#calibration-references).
const STAKED_ETH: f64 = 34e6;
/// Electra's MIN_SLASHING_PENALTY_QUOTIENT (consensus specifications, Electra).
const ELECTRA_QUOTIENT: f64 = 4096.0;
/// The large slashing incidents besides the one the data file lists (75 validators):
/// 39 and 20 validators (docs/model.md#calibration-references).
const OTHER_LARGE_INCIDENTS: [f64; 2] = [39.0, 20.0];

/// The `preset` of the lines that check the data against each other, in no preset.
const CROSS_CHECK: &str = "cross-check";

/// The presets fitted here.
pub const WEETH: &str = "etherfi-weeth";
/// Native EigenLayer preset.
pub const NATIVE: &str = "eigenlayer-native";
/// Renzo ezETH preset.
pub const EZETH: &str = "renzo-ezeth";
/// The weETH loop on Aave V3's e-mode.
pub const AAVE_LOOP: &str = "weeth-aave-loop";

/// One calibrated parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Preset (file stem in `data/scenarios/`).
    pub preset: String,
    /// Field path in the preset, in the grammar of `sweep --set`: `base.apr_mean`,
    /// `token.EIGEN.volatility`, `operator."<name>".weight`, ...
    pub key: String,
    /// Value, rounded as printed.
    pub value: f64,
    /// Estimator and sample window.
    pub note: String,
}

fn sig4(x: f64) -> f64 {
    format!("{x:.3e}")
        .parse()
        .expect("a formatted float parses")
}

fn read_csv(dir: &Path, name: &str) -> Result<csv::Reader<std::fs::File>> {
    let path = dir.join(name);
    let file = std::fs::File::open(&path)
        .map_err(|e| BadInput(format!("cannot read data file {}: {e}", path.display())))?;
    Ok(csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(file))
}

/// The date part (first 10 characters) of a timestamp.
fn day(s: &str) -> &str {
    s.get(..10).unwrap_or(s)
}

/// First and last element, or an error naming the file.
fn ends<'a, T>(rows: &'a [T], file: &str) -> Result<(&'a T, &'a T)> {
    match (rows.first(), rows.last()) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(anyhow!("{file} has no data rows")),
    }
}

fn parse_date(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").with_context(|| format!("bad date {s:?}"))
}

#[derive(Deserialize)]
struct PriceRow {
    timestamp: f64,
    date_utc: String,
    close: f64,
}

#[derive(Deserialize)]
struct OracleRow {
    timestamp: String,
    oracle_price_eth: f64,
}

#[derive(Deserialize)]
struct BorrowIndexRow {
    timestamp: f64,
    #[serde(rename = "variableBorrowIndex")]
    variable_borrow_index: f64,
}

#[derive(Deserialize)]
struct DistributionRow {
    staking_period_start: String,
    staking_period_end: String,
    eigen_earned: f64,
    eth_restaked: f64,
    eth_not_restaked: f64,
}

#[derive(Deserialize)]
struct ApyRow {
    #[serde(rename = "Base")]
    base: Option<f64>,
}

#[derive(Deserialize)]
struct AnchorRow {
    as_of_date: String,
    metric: String,
    value: f64,
    validator_count: Option<f64>,
}

#[derive(Deserialize)]
struct OperatorShares {
    address: String,
    #[serde(rename = "numAvs")]
    num_avs: u32,
    shares: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct OperatorMetadata {
    address: String,
    name: Option<String>,
}

/// Fits every calibrated parameter from the files in `dir`.
///
/// # Errors
/// A missing or malformed data file (bad input), or data the estimators cannot use.
pub fn lines(dir: &Path) -> Result<Vec<Line>> {
    let mut out = Vec::new();
    let all = [WEETH, NATIVE, EZETH];

    // Base APR: weETH/ETH exchange rate (net of ether.fi's fee), grossed up.
    let rows: Vec<OracleRow> = read_csv(dir, "weeth_eth_aave_oracle_1h.csv")?
        .deserialize()
        .collect::<Result<_, _>>()
        .context("weeth_eth_aave_oracle_1h.csv")?;
    let times: Vec<f64> = rows
        .iter()
        .map(|r| {
            DateTime::parse_from_str(&r.timestamp, "%Y-%m-%d %H:%M:%S%:z")
                .map(|t| t.timestamp() as f64)
                .with_context(|| format!("bad timestamp {:?}", r.timestamp))
        })
        .collect::<Result<_>>()?;
    let values: Vec<f64> = rows.iter().map(|r| r.oracle_price_eth).collect();
    let growth = fit_growth(&times, &values, APR_BLOCK_DAYS)
        .ok_or_else(|| anyhow!("weETH oracle series too short"))?;
    let (first, last) = ends(&rows, "weeth_eth_aave_oracle_1h.csv")?;
    let window = format!(
        "weeth_eth_aave_oracle_1h.csv {} .. {} ({:.2} years)",
        day(&first.timestamp),
        day(&last.timestamp),
        growth.years
    );
    let gross = 1.0 - LRT_FEE;
    add(
        &mut out,
        &all,
        "base.apr_mean",
        sig4(growth.rate / gross),
        &format!(
            "continuous growth of the weETH/ETH exchange rate, ln(X_end/X_start)/years = {:.5} net of ether.fi's 10% fee, / (1 - 0.10); {window}",
            growth.rate
        ),
    );
    add(
        &mut out,
        &all,
        "base.apr_sd",
        sig4(growth.year_mean_sd / gross),
        &format!(
            "uncertainty of the coming year's mean APR: sd {:.5} of the growth rate over {} non-overlapping {APR_BLOCK_DAYS}-day blocks, lag-1 autocorrelation {:.2}, as the sd of a year's mean of AR(1) blocks, sd x sqrt((1 + r1) / (1 - r1)) / sqrt(365 / {APR_BLOCK_DAYS}), / (1 - 0.10); {window}",
            growth.block_sd, growth.blocks, growth.block_autocorrelation
        ),
    );

    // Beacon-chain slashing rate per validator-year.
    let anchors: Vec<AnchorRow> = read_csv(dir, "slashing_anchor_points.csv")?
        .deserialize()
        .collect::<Result<_, _>>()
        .context("slashing_anchor_points.csv")?;
    let mut dated: Vec<(NaiveDate, f64)> = anchors
        .iter()
        .filter(|a| a.metric == "cumulative_slashed")
        .filter_map(|a| parse_date(&a.as_of_date).ok().map(|d| (d, a.value)))
        .collect();
    dated.sort_by_key(|d| d.0);
    let counts: Vec<f64> = anchors.iter().filter_map(|a| a.validator_count).collect();
    let (first, last) = (
        *dated
            .first()
            .ok_or_else(|| anyhow!("no dated slashing count"))?,
        *dated.last().expect("non-empty"),
    );
    let years = (last.0 - first.0).num_days() as f64 / restake_core::DAYS_PER_YEAR;
    let (lo, hi) = counts.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), c| {
        (lo.min(*c), hi.max(*c))
    });
    let validators = 0.5 * (lo + hi);
    let events = last.1 - first.1;

    // Severity of a beacon-chain slashing: what a slashed validator loses under
    // Electra, for the incident size a slashed validator is in (size-biased: the
    // incidents of the data and docs, the rest of all slashings single).
    let largest = anchors
        .iter()
        .filter(|a| a.metric == "single_event_slashed")
        .map(|a| a.value)
        .fold(0.0f64, f64::max);
    let all_slashed = dated.last().map_or(0.0, |d| d.1);
    let large: Vec<f64> = std::iter::once(largest)
        .chain(OTHER_LARGE_INCIDENTS)
        .collect();
    let singles = all_slashed - large.iter().sum::<f64>();
    let exit_loss = (LAUNCHNODES_TOTAL_ETH - LAUNCHNODES_INITIAL_ETH) / LAUNCHNODES_ETH;
    let loss =
        |n: f64| slashed_validator_loss(32.0, ELECTRA_QUOTIENT, 32.0 * n, STAKED_ETH, exit_loss);
    let severity =
        (large.iter().map(|n| n * loss(*n)).sum::<f64>() + singles * loss(1.0)) / all_slashed;
    add(
        &mut out,
        &all,
        "base.slash_severity.value",
        sig4(severity),
        &format!(
            "share of a slashed validator's balance lost under Electra: initial 1/4096 + correlation penalty 3 x the ETH slashed with it / {STAKED_ETH:.0} ETH staked + {exit_loss:.5} of penalties and missed rewards until withdrawal (Launchnodes, Oct 2023: ({LAUNCHNODES_TOTAL_ETH} - {LAUNCHNODES_INITIAL_ETH}) / {LAUNCHNODES_ETH} ETH); averaged over the incident a slashed validator is in, incidents of {large:?} validators and the other {singles} of {all_slashed} slashings single (ASSUMPTION: no public per-incident list); slashing_anchor_points.csv"
        ),
    );
    // The same arithmetic before Electra (initial 1/32) on the Launchnodes incident, with
    // about 27.5M ETH staked then, against its reported initial penalties.
    let launchnodes =
        20.0 * 32.0 * slashed_validator_loss(32.0, 32.0, LAUNCHNODES_ETH, 27.5e6, 0.0);
    out.push(Line {
        preset: CROSS_CHECK.into(),
        key: "launchnodes_initial_penalties_eth".into(),
        value: sig4(launchnodes),
        note: format!(
            "20 validators, initial 1/32 + correlation penalty with ~27.5M ETH staked: reported {LAUNCHNODES_INITIAL_ETH} ETH"
        ),
    });
    add(
        &mut out,
        &all,
        "base.slash_prob",
        sig4(annual_probability(events, validators * years)),
        &format!(
            "1 - exp(-rate), rate = {events} slashings / ({validators} validators (mean of {lo} and {hi}) x {years:.3} years) per validator-year; slashing_anchor_points.csv {} .. {}",
            first.0, last.0
        ),
    );

    // EIGEN priced in ETH: GBM.
    let prices: Vec<PriceRow> = read_csv(dir, "eigen_weth_uniswapv3_1h.csv")?
        .deserialize()
        .collect::<Result<_, _>>()
        .context("eigen_weth_uniswapv3_1h.csv")?;
    let times: Vec<f64> = prices.iter().map(|p| p.timestamp).collect();
    let closes: Vec<f64> = prices.iter().map(|p| p.close).collect();
    let gbm = fit_gbm(&times, &closes).ok_or_else(|| anyhow!("EIGEN series unusable"))?;
    let (first, last) = ends(&prices, "eigen_weth_uniswapv3_1h.csv")?;
    let window = format!(
        "eigen_weth_uniswapv3_1h.csv {} .. {}, {} hourly log returns",
        day(&first.date_utc),
        day(&last.date_utc),
        gbm.returns
    );
    let price_eth = sig4(gbm.last_price);
    add(
        &mut out,
        &all,
        "token.EIGEN.price_eth",
        price_eth,
        &format!("last hourly close; {window}"),
    );
    add(
        &mut out,
        &all,
        "token.EIGEN.volatility",
        sig4(gbm.volatility),
        &format!("sd of hourly log returns x sqrt(hours a year); {window}"),
    );
    add(
        &mut out,
        &all,
        "token.EIGEN.drift",
        0.0,
        &format!(
            "forward drift 0: the fitted GBM drift (maximum likelihood, mean log return / dt + sigma^2/2) is {:.3} a year with standard error {:.2}, no evidence either way; a view of your own is a one-line change; {window}",
            gbm.drift, gbm.drift_std_error
        ),
    );

    // EIGEN incentives paid to ether.fi stakers.
    let dist: Vec<DistributionRow> = read_csv(dir, "etherfi_eigen_distributions_weekly.csv")?
        .deserialize()
        .collect::<Result<_, _>>()
        .context("etherfi_eigen_distributions_weekly.csv")?;
    let mut all_eeth = Vec::new();
    let mut restaked = Vec::new();
    for d in &dist {
        let days = (parse_date(&d.staking_period_end)? - parse_date(&d.staking_period_start)?)
            .num_days() as f64
            + 1.0;
        all_eeth.push(RewardPeriod {
            days,
            tokens: d.eigen_earned,
            stake_eth: d.eth_restaked + d.eth_not_restaked,
        });
        restaked.push(RewardPeriod {
            days,
            tokens: d.eigen_earned,
            stake_eth: d.eth_restaked,
        });
    }
    let (first, last) = ends(&dist, "etherfi_eigen_distributions_weekly.csv")?;
    let window = format!(
        "etherfi_eigen_distributions_weekly.csv {} .. {}, {} periods",
        first.staking_period_start,
        last.staking_period_end,
        dist.len()
    );
    let net = (1.0 - COMMISSION) * (1.0 - LRT_FEE);
    let per_eeth = token_rate_per_eth_year(&all_eeth).ok_or_else(|| anyhow!("no stake"))?;
    let per_restaked = token_rate_per_eth_year(&restaked).ok_or_else(|| anyhow!("no stake"))?;
    add(
        &mut out,
        &[WEETH],
        "incentive.EIGEN.apr",
        sig4(per_eeth * price_eth / net),
        &format!(
            "{per_eeth:.4} EIGEN per eETH a year paid (total EIGEN / eETH-days x 365) x price_eth, grossed up for the 10% commission and the 10% ether.fi fee; {window}"
        ),
    );
    add(
        &mut out,
        &[NATIVE, EZETH],
        "incentive.EIGEN.apr",
        sig4(per_restaked * price_eth / net),
        &format!(
            "{per_restaked:.4} EIGEN per restaked ETH a year paid to ether.fi (total EIGEN / restaked ETH-days x 365) x price_eth, grossed up for the 10% commission and the 10% ether.fi fee: the protocol's rate per restaked ETH; {window}"
        ),
    );

    // Cross-check only: eETH base APY from ether.fi's dashboard.
    let apy: Vec<ApyRow> = read_csv(dir, "etherfi_eeth_apy_daily.csv")?
        .deserialize()
        .collect::<Result<_, _>>()
        .context("etherfi_eeth_apy_daily.csv")?;
    let base: Vec<f64> = apy.iter().filter_map(|a| a.base).collect();
    let mean_apy = base.iter().sum::<f64>() / base.len() as f64 / 100.0;

    // Operators: EigenLayer snapshot, weights from native (beacon-chain) ETH shares.
    let shares: Vec<OperatorShares> =
        read_json(dir, "eigenlayer_operator_tvl_staker_snapshot.json")?;
    let meta: Vec<OperatorMetadata> = read_json(dir, "eigenlayer_operator_metadata_snapshot.json")?;
    let names: BTreeMap<&str, &str> = meta
        .iter()
        .filter_map(|m| m.name.as_deref().map(|n| (m.address.as_str(), n.trim())))
        .collect();
    let mut native: Vec<(String, f64, u32)> = shares
        .iter()
        .filter_map(|o| {
            let wei: f64 = o.shares.get(BEACON_STRATEGY)?.parse().ok()?;
            let name = names.get(o.address.as_str()).copied().unwrap_or(&o.address);
            Some((name.to_string(), wei / 1e18, o.num_avs))
        })
        .collect();
    native.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let total_native: f64 = native.iter().map(|o| o.1).sum();
    operator_lines(
        &mut out,
        WEETH,
        native
            .iter()
            .filter(|o| o.0.starts_with("ether.fi"))
            .take(4)
            .collect(),
        "4 largest ether.fi operators",
        total_native,
    )?;
    operator_lines(
        &mut out,
        EZETH,
        native
            .iter()
            .filter(|o| o.0.to_lowercase().starts_with("renzo operated"))
            .take(5)
            .collect(),
        "5 largest Renzo operators",
        total_native,
    )?;
    operator_lines(
        &mut out,
        NATIVE,
        native.iter().take(5).collect(),
        "5 largest operators by native ETH",
        total_native,
    )?;

    // The loop's borrow rate: the growth of Aave V3's WETH variable borrow index, what a
    // unit of debt grew to, as a continuous rate (docs/model.md#leverage).
    let index: Vec<BorrowIndexRow> = read_csv(dir, "aave_v3_weth_rates_daily.csv")?
        .deserialize()
        .collect::<Result<_, _>>()
        .context("aave_v3_weth_rates_daily.csv")?;
    let times: Vec<f64> = index.iter().map(|r| r.timestamp).collect();
    let values: Vec<f64> = index.iter().map(|r| r.variable_borrow_index).collect();
    let borrow = fit_growth(&times, &values, APR_BLOCK_DAYS)
        .ok_or_else(|| anyhow!("aave_v3_weth_rates_daily.csv too short"))?;
    add(
        &mut out,
        &[AAVE_LOOP],
        "leverage.borrow_apr",
        sig4(borrow.rate),
        &format!(
            "continuous growth of Aave V3's WETH variable borrow index, ln(I_end/I_start)/years; aave_v3_weth_rates_daily.csv ({:.2} years)",
            borrow.years
        ),
    );

    // ezETH market exit: April 2024 depeg.
    let panel: Vec<BTreeMap<String, String>> = read_csv(dir, "econodlt_restaking_panel_daily.csv")?
        .deserialize()
        .collect::<Result<_, _>>()
        .context("econodlt_restaking_panel_daily.csv")?;
    let (first, last) = ends(&panel, "econodlt_restaking_panel_daily.csv")?;
    let date = |row: &BTreeMap<String, String>| {
        row.get("date")
            .ok_or_else(|| anyhow!("econodlt_restaking_panel_daily.csv has no date column"))
            .and_then(|d| parse_date(d))
    };
    let (first, last) = (date(first)?, date(last)?);
    let panel_years = ((last - first).num_days() + 1) as f64 / restake_core::DAYS_PER_YEAR;
    add(
        &mut out,
        &[EZETH],
        "liquid.depeg_prob",
        sig4(annual_probability(1.0, panel_years)),
        &format!(
            "1 - exp(-1 / years): one major ezETH depeg (2024-04-24) over the ezETH market history of econodlt_restaking_panel_daily.csv {first} .. {last} ({panel_years:.3} years); the holder is assumed to exit into the episode"
        ),
    );
    let max_discount = 1.0 - EZETH_DEX_LOW_ETH;
    let fit = fit_scaled_beta(
        EZETH_TYPICAL_MAX_DISCOUNT,
        EZETH_AGGREGATE_DISCOUNT,
        0.95,
        max_discount,
    )
    .ok_or_else(|| anyhow!("depeg figures inconsistent"))?;
    let why = "beta on [0, 0.78] (DEX low 0.22 ETH) with mean 3.75% (largest discount seen by a risk manager) and 95% quantile 13% (aggregate price on 2024-04-24), docs/model.md#calibration-references";
    add(
        &mut out,
        &[EZETH],
        "liquid.depeg_discount.alpha",
        sig4(fit.alpha),
        why,
    );
    add(
        &mut out,
        &[EZETH],
        "liquid.depeg_discount.beta",
        sig4(fit.beta),
        why,
    );
    add(
        &mut out,
        &[EZETH],
        "liquid.depeg_discount.max",
        sig4(fit.max),
        why,
    );

    out.push(Line {
        preset: CROSS_CHECK.into(),
        key: "eETH base APY (dashboard), continuous".into(),
        value: sig4((1.0 + mean_apy).ln()),
        note: format!(
            "mean of {} daily Base values of etherfi_eeth_apy_daily.csv, ln(1 + APY); compare with the weETH exchange-rate growth {:.5}",
            base.len(),
            growth.rate
        ),
    });
    Ok(out)
}

/// Adds `key = value` to each of `presets`.
fn add(out: &mut Vec<Line>, presets: &[&'static str], key: &str, value: f64, note: &str) {
    for preset in presets {
        out.push(Line {
            preset: preset.to_string(),
            key: key.to_string(),
            value,
            note: note.to_string(),
        });
    }
}

/// Operator weights of `preset` from the chosen operators' native ETH, in millionths,
/// the last one taking the rounding so that the weights sum to 1 exactly.
fn operator_lines(
    out: &mut Vec<Line>,
    preset: &'static str,
    chosen: Vec<&(String, f64, u32)>,
    why: &str,
    total_native: f64,
) -> Result<()> {
    let snapshot =
        "eigenlayer_operator_tvl_staker_snapshot.json (EigenLayer app API, before 2024-10-31)";
    let stakes: Vec<f64> = chosen.iter().map(|o| o.1).collect();
    let w = weights(&stakes)
        .filter(|w| w.iter().all(|x| x.is_finite()))
        .ok_or_else(|| {
            anyhow!(
                "{snapshot}: no native ETH among the {why} ({} operator(s) found)",
                chosen.len()
            )
        })?;
    let mut micros: Vec<i64> = w.iter().map(|x| (x * 1e6).round() as i64).collect();
    let last = micros.len() - 1;
    micros[last] = 1_000_000 - micros[..last].iter().sum::<i64>();
    for (o, m) in chosen.iter().zip(micros) {
        out.push(Line {
            preset: preset.to_string(),
            key: restake_core::scenario::field_path(&["operator", o.0.as_str(), "weight"]),
            value: format!("{:.6}", m as f64 / 1e6).parse().expect("decimal"),
            note: format!(
                "{:.0} native ETH of {:.0} among the {why} ({:.2}% of all native ETH), registered to {} AVSs; {snapshot}",
                o.1,
                stakes.iter().sum::<f64>(),
                100.0 * o.1 / total_native,
                o.2
            ),
        });
    }
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| BadInput(format!("cannot read data file {}: {e}", path.display())))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The calibrated values of every preset in `scenarios` that says it takes them: each
/// value whose comment starts with `calibrate` gets the fitted value of its own preset,
/// or, for `calibrate (<preset>)`, of that one (a figure reused from another preset's
/// data); an inline table (a severity) gets each fitted key below it. In file order,
/// per preset in name order.
///
/// # Errors
/// A preset that cannot be read, or a value said to be calibrated that the fit does
/// not give (its provenance would be false).
fn preset_lines(fitted: &[Line], scenarios: &Path) -> Result<Vec<(PathBuf, Vec<Line>)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios)
        .map_err(|e| BadInput(format!("cannot read {}: {e}", scenarios.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let preset = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file)
            .map_err(|e| BadInput(format!("cannot read {}: {e}", file.display())))?;
        let values = restake_run::comments::annotated(&text)
            .map_err(|e| BadInput(format!("{}: {e}", file.display())))?;
        let mut lines = Vec::new();
        for v in values {
            let comment = v.after.trim_start_matches('#').trim();
            let Some(rest) = comment.strip_prefix("calibrate") else {
                continue;
            };
            let source = rest
                .strip_prefix(" (")
                .and_then(|r| r.split_once(')'))
                .map_or(preset.as_str(), |(s, _)| s);
            let field = v.field();
            let found: Vec<&Line> = fitted
                .iter()
                .filter(|l| {
                    l.preset == source
                        && (l.key == field || l.key.starts_with(&format!("{field}.")))
                })
                .collect();
            if found.is_empty() {
                return Err(BadInput(format!(
                    "{}: {field} says \"{}\", but calibrate fits no such value for {source}",
                    file.display(),
                    comment
                ))
                .into());
            }
            lines.extend(found.into_iter().map(|l| Line {
                preset: preset.clone(),
                key: l.key.clone(),
                value: l.value,
                note: if source == preset {
                    l.note.clone()
                } else {
                    format!("as {source}: {}", l.note)
                },
            }));
        }
        if !lines.is_empty() {
            out.push((file, lines));
        }
    }
    Ok(out)
}

/// Prints the calibration of the data in `dir` for every preset in `scenarios` that
/// takes calibrated values ([`preset_lines`]), and the cross-checks; with `update`,
/// rewrites those values in the preset files in place, every comment and all other text
/// kept, and prints what changed.
///
/// # Errors
/// As [`lines`] and [`preset_lines`], or a write error.
pub fn run(dir: &Path, scenarios: &Path, update: bool) -> Result<()> {
    // Whatever stops the fit is a problem of the data given: bad input.
    let fitted = lines(dir).map_err(|e| BadInput(format!("{e:#}")))?;
    let presets = preset_lines(&fitted, scenarios)?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# restake-mc calibrate: presets' parameters fitted to {}\n# <preset> <field> = <value>  # <estimator>; <sample window>",
        dir.display()
    );
    let cross_checks = fitted.iter().filter(|l| l.preset == CROSS_CHECK);
    for l in presets
        .iter()
        .flat_map(|(_, lines)| lines)
        .chain(cross_checks)
    {
        let _ = writeln!(s, "{} {} = {}  # {}", l.preset, l.key, l.value, l.note);
    }
    if update {
        let mut changed = 0;
        let mut rewritten = Vec::new();
        for (file, lines) in &presets {
            let text = std::fs::read_to_string(file)
                .map_err(|e| BadInput(format!("cannot read {}: {e}", file.display())))?;
            let updates: Vec<(Vec<String>, f64)> = lines
                .iter()
                .map(|l| {
                    let keys = restake_core::scenario::field_path_keys(&l.key).map_err(BadInput)?;
                    Ok((keys, l.value))
                })
                .collect::<Result<_>>()?;
            let new = restake_run::comments::set_numbers(&text, &updates)
                .map_err(|e| BadInput(format!("{}: {e}", file.display())))?;
            restake_core::Scenario::from_toml(&new).map_err(|e| {
                BadInput(format!(
                    "{}: the calibrated values fail its checks: {e}",
                    file.display()
                ))
            })?;
            let before =
                restake_run::comments::annotated(&text).map_err(|e| BadInput(e.to_string()))?;
            let after =
                restake_run::comments::annotated(&new).map_err(|e| BadInput(e.to_string()))?;
            for (b, a) in before.iter().zip(&after) {
                if b.value != a.value {
                    changed += 1;
                    let _ = writeln!(
                        s,
                        "updated {} {}: {} -> {}",
                        file.display(),
                        a.field(),
                        b.value,
                        a.value
                    );
                }
            }
            if new != text {
                rewritten.push((file.clone(), new));
            }
        }
        let targets: Vec<(&Path, restake_run::publish::Writer)> = rewritten
            .iter()
            .map(|(file, new)| {
                let write: restake_run::publish::Writer =
                    Box::new(move |w: &mut (dyn std::io::Write + Send)| {
                        w.write_all(new.as_bytes())
                    });
                (file.as_path(), write)
            })
            .collect();
        restake_run::publish::write_files(targets).map_err(|e| BadInput(e.to_string()))?;
        let _ = writeln!(
            s,
            "updated {changed} value(s) in {} of {} preset(s)",
            rewritten.len(),
            presets.len()
        );
    }
    crate::print_stdout(&s)
}

//! Random small scenarios for property tests: one to three operators and AVSs, either
//! route and stake mode, every risk source, severities of every law, vetoes, a token
//! with incentives and AVS rewards, and a market exit. Probabilities are large (up to
//! 0.3 a year) so that a few thousand paths see many events.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use restake_core::scenario::{
    AvsSpec, BaseSpec, ExitMode, IncentiveSpec, LiquidSpec, OperatorSpec, PositionSpec,
    ProtocolSpec, ReportSpec, Route, SimulationSpec, StakeMode, TokenSpec,
};
use restake_core::{Scenario, ScenarioSpec, SeveritySpec};

/// A proptest configuration with `cases` cases, a fixed seed (so a run is
/// reproducible and cannot flake) and no failure files.
pub fn fixed_config(cases: u32, seed: u64) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A severity of any law: fixed, uniform, beta, or beta scaled to `[min, max]`.
pub fn severity() -> impl Strategy<Value = SeveritySpec> {
    prop_oneof![
        (0.0..=1.0f64).prop_map(|value| SeveritySpec::Fixed { value }),
        (0.0..0.9f64, 0.01..0.5f64).prop_map(|(min, w)| SeveritySpec::Uniform {
            min,
            max: (min + w).min(1.0),
        }),
        (0.5..5.0f64, 0.5..10.0f64).prop_map(|(alpha, beta)| SeveritySpec::Beta {
            alpha,
            beta,
            min: None,
            max: None,
        }),
        (0.5..5.0f64, 0.5..10.0f64, 0.0..0.5f64, 0.1..0.5f64).prop_map(|(alpha, beta, min, w)| {
            SeveritySpec::Beta {
                alpha,
                beta,
                min: Some(min),
                max: Some(min + w),
            }
        }),
    ]
}

/// A probability that is 0 a third of the time, else up to `max`.
fn prob(max: f64) -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 0.0..max, 0.0..max]
}

fn avs(i: usize) -> impl Strategy<Value = AvsSpec> {
    (
        (0.0..0.02f64, any::<bool>(), 0.0..0.05f64),
        (prob(0.3), severity()),
        (prob(0.1), severity()),
        prop_oneof![Just(0.0), 0.0..0.6f64],
    )
        .prop_map(
            move |((fee_apr, rewards, reward_apr), (sp, ss), (ip, is), veto)| AvsSpec {
                name: format!("A{i}"),
                fee_apr,
                reward_token: rewards.then(|| "T".to_string()),
                reward_apr: if rewards { reward_apr } else { 0.0 },
                slash_prob: sp,
                slash_severity: Some(ss),
                incident_prob: ip,
                incident_severity: Some(is),
                veto_prob: veto,
            },
        )
}

/// Raw operator: weight, commission, fault probability, allocation per AVS (`None` for
/// no allocation) and an optional per-AVS probability override.
type RawOperator = (f64, f64, f64, Vec<(Option<f64>, Option<f64>)>);

fn raw_operator(n_avs: usize) -> impl Strategy<Value = RawOperator> {
    (
        0.1..1.0f64,
        0.0..0.3f64,
        prob(0.2),
        prop::collection::vec(
            (
                prop_oneof![Just(None), (0.05..1.0f64).prop_map(Some)],
                prop_oneof![Just(None), Just(None), prob(0.3).prop_map(Some)],
            ),
            n_avs,
        ),
    )
}

fn operators(n_avs: usize, mode: StakeMode) -> impl Strategy<Value = Vec<OperatorSpec>> {
    prop::collection::vec(raw_operator(n_avs), 1..=3).prop_map(move |raw| {
        let total: f64 = raw.iter().map(|r| r.0).sum();
        raw.iter()
            .enumerate()
            .map(|(k, (w, commission, fault, allocs))| {
                let allocated: f64 = allocs.iter().filter_map(|a| a.0).sum();
                // Unique stake: magnitudes sum to at most 1.
                let cap = match mode {
                    StakeMode::Unique if allocated > 1.0 => 1.0 / allocated,
                    _ => 1.0,
                };
                let mut allocations = BTreeMap::new();
                let mut slash_probs = BTreeMap::new();
                for (i, (a, p)) in allocs.iter().enumerate() {
                    if let Some(a) = a {
                        allocations.insert(format!("A{i}"), a * cap);
                        if let Some(p) = p {
                            slash_probs.insert(format!("A{i}"), *p);
                        }
                    }
                }
                OperatorSpec {
                    name: format!("o{k}"),
                    weight: w / total,
                    commission: *commission,
                    fault_prob: *fault,
                    allocations,
                    slash_probs,
                }
            })
            .collect()
    })
}

/// A random checked scenario (see the module docs).
pub fn small_scenario() -> impl Strategy<Value = Scenario> {
    let position = (
        any::<bool>(),
        prop_oneof![Just(StakeMode::Unique), Just(StakeMode::Shared)],
        1.0..1000.0f64,
        30u32..=730,
    );
    let base = (
        0.0..0.06f64,
        prop_oneof![Just(0.0), 0.0..0.02f64],
        0.0..0.2f64,
        (prob(0.2), severity()),
    );
    let liquid = (0.0..0.2f64, any::<bool>(), prob(0.5), severity());
    let protocol = (prob(0.1), severity());
    let token = (
        any::<bool>(),
        (
            0.0005..0.01f64,
            -0.5..0.5f64,
            prop_oneof![Just(0.0), 0.0..1.2f64],
        ),
        0.0..0.05f64,
    );
    (position, base, liquid, protocol, token, 1usize..=3)
        .prop_flat_map(|(position, base, liquid, protocol, token, n_avs)| {
            let mode = position.1;
            (
                Just((position, base, liquid, protocol, token)),
                (0..n_avs).map(avs).collect::<Vec<_>>(),
                operators(n_avs, mode),
            )
        })
        .prop_map(
            |(
                (
                    (is_liquid, stake_mode, principal_eth, days),
                    (apr_mean, apr_sd, fee, (beacon_p, beacon_s)),
                    (reward_fee, market, depeg_prob, discount),
                    (exploit_p, exploit_s),
                    (has_token, (price_eth, drift, volatility), incentive_apr),
                ),
                avs,
                operators,
            )| {
                let route = if is_liquid {
                    Route::Liquid
                } else {
                    Route::Native
                };
                // The AVSs name the token "T" for their rewards: keep it whenever one does.
                let needs_token = has_token || avs.iter().any(|a| a.reward_token.is_some());
                let spec = ScenarioSpec {
                    name: "random".into(),
                    description: String::new(),
                    position: PositionSpec {
                        principal_eth,
                        route,
                        horizon_days: f64::from(days),
                        stake_mode,
                    },
                    base: BaseSpec {
                        apr_mean,
                        apr_sd,
                        fee,
                        slash_prob: beacon_p,
                        slash_severity: Some(beacon_s),
                    },
                    liquid: is_liquid.then_some(LiquidSpec {
                        reward_fee,
                        exit: if market {
                            ExitMode::Market
                        } else {
                            ExitMode::Redeem
                        },
                        depeg_prob,
                        depeg_discount: Some(discount),
                        depeg_days: None,
                    }),
                    protocol: ProtocolSpec {
                        exploit_prob: exploit_p,
                        exploit_severity: Some(exploit_s),
                    },
                    tokens: if needs_token {
                        vec![TokenSpec {
                            name: "T".into(),
                            price_eth,
                            drift,
                            volatility,
                        }]
                    } else {
                        Vec::new()
                    },
                    incentives: if has_token {
                        vec![IncentiveSpec {
                            token: "T".into(),
                            apr: incentive_apr,
                        }]
                    } else {
                        Vec::new()
                    },
                    avs,
                    operators,
                    report: ReportSpec::default(),
                    simulation: SimulationSpec::default(),
                    systematic: None,
                    stress: Vec::new(),
                    leverage: None,
                };
                Scenario::try_from(spec).unwrap_or_else(|e| panic!("generator made {e}"))
            },
        )
}

/// A random checked scenario of [`small_scenario`] with a `[systematic]` table: a common
/// correlation in [0, 0.8) and, for each kind, an own one half of the time.
pub fn factor_scenario() -> impl Strategy<Value = Scenario> {
    let own = || prop_oneof![Just(None), (0.0..0.8f64).prop_map(Some)];
    (
        small_scenario(),
        0.0..0.8f64,
        [own(), own(), own(), own(), own(), own()],
    )
        .prop_map(|(scenario, rho, [a, b, c, d, e, f])| {
            let mut spec = scenario.spec().clone();
            spec.systematic = Some(restake_core::stress::SystematicSpec {
                rho,
                avs_slashing: a,
                avs_incident: b,
                operator_fault: c,
                beacon: d,
                protocol_exploit: e,
                depeg: f,
            });
            Scenario::try_from(spec).unwrap_or_else(|e| panic!("generator made {e}"))
        })
}

/// A random checked scenario of [`small_scenario`] on the liquid route with a
/// `[leverage]` table: a liquidation threshold in [0.8, 0.96], a leverage anywhere
/// between 1 and the largest the threshold allows, a bonus up to 10% (with
/// `LT (1 + bonus) < 1`), Aave's close factor or a full close, a borrow rate up to 8% (so
/// that the carry is negative on many paths), either oracle, depeg episodes of 1 to 30
/// days. A native scenario takes a `[liquid]` table with a market exit.
pub fn levered_scenario() -> impl Strategy<Value = Scenario> {
    (
        small_scenario(),
        0.8..0.96f64,
        0.05..0.95f64,
        0.0..1.0f64,
        prop_oneof![
            Just((0.5, 0.95)),
            Just((1.0, 1.0)),
            (0.2..1.0f64, 0.8..1.0f64)
        ],
        0.0..0.08f64,
        any::<bool>(),
        1.0..30.0f64,
    )
        .prop_map(
            |(
                scenario,
                lt,
                reach,
                bonus_share,
                (close_factor, full_close),
                borrow,
                market,
                days,
            )| {
                let mut spec = scenario.spec().clone();
                spec.position.route = Route::Liquid;
                let liquid = spec.liquid.get_or_insert(LiquidSpec {
                    reward_fee: 0.1,
                    exit: ExitMode::Market,
                    depeg_prob: 0.3,
                    depeg_discount: Some(SeveritySpec::Uniform {
                        min: 0.0,
                        max: 0.05,
                    }),
                    depeg_days: None,
                });
                liquid.depeg_days = Some(days);
                spec.leverage = Some(restake_core::leverage::LeverageSpec {
                    leverage: 1.0 + reach * (lt / (1.0 - lt)),
                    liquidation_threshold: lt,
                    liquidation_bonus: bonus_share * (0.1f64).min(0.999 / lt - 1.0),
                    close_factor,
                    full_close_below_hf: full_close,
                    borrow_apr: borrow,
                    oracle: if market {
                        restake_core::leverage::Oracle::Market
                    } else {
                        restake_core::leverage::Oracle::ExchangeRate
                    },
                });
                Scenario::try_from(spec).unwrap_or_else(|e| panic!("generator made {e}"))
            },
        )
}

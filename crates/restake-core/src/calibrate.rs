//! Calibration estimators.

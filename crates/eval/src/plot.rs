//! Plots (TODO helper).

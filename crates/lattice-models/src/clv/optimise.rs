//! Maximum likelihood on log-parameters with argmin: Nelder-Mead restarts polished by L-BFGS,
//! an optional penalty toward the starting point, and the checks that the optimum is usable.

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;
use serde::{Deserialize, Serialize};

use super::{ClvError, Result};

/// Options of a maximum likelihood fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitOptions {
    /// Weight of an L2 penalty on the log-parameters' distance from the starting point (see
    /// the [module docs](super)), added to the mean negative log-likelihood. 0 (the default) is
    /// plain maximum likelihood; 0.01–0.1 makes tiny or degenerate data fit.
    pub penalizer: f64,
    /// Iteration cap of each Nelder-Mead round.
    pub max_iters: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            penalizer: 0.0,
            max_iters: 5_000,
        }
    }
}

impl FitOptions {
    pub(super) fn check(&self) -> Result<()> {
        if !(self.penalizer.is_finite() && self.penalizer >= 0.0) {
            return Err(ClvError::InvalidArgument {
                name: "penalizer",
                value: self.penalizer,
                problem: "expected a finite value ≥ 0".into(),
            });
        }
        Ok(())
    }
}

/// Log-parameters beyond this are treated as infeasible (parameters outside ~[1e-13, 1e13]).
const THETA_WALL: f64 = 30.0;
/// A fitted log-parameter beyond this means the parameter ran off rather than converged.
const THETA_BOUNDARY: f64 = 18.0;
/// Cost of an infeasible or non-finite point; finite so Nelder-Mead's arithmetic stays finite.
const INFEASIBLE: f64 = 1e300;

/// An objective on log-parameters: value (to minimise) and optionally its gradient.
pub(super) trait Objective {
    fn eval(&self, theta: &[f64], grad: Option<&mut [f64]>) -> f64;
}

/// The objective plus `coef · ‖θ − center‖²`.
struct Problem<'a, O> {
    obj: &'a O,
    coef: f64,
    center: &'a [f64],
}

impl<O: Objective> Problem<'_, O> {
    fn penalty(&self, theta: &[f64]) -> f64 {
        let d2: f64 = theta
            .iter()
            .zip(self.center)
            .map(|(t, c)| (t - c) * (t - c))
            .sum();
        self.coef * d2
    }
}

impl<O: Objective> CostFunction for Problem<'_, O> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        if theta.iter().any(|t| !t.is_finite() || t.abs() > THETA_WALL) {
            return Ok(INFEASIBLE);
        }
        let v = self.obj.eval(theta, None) + self.penalty(theta);
        Ok(if v.is_finite() { v } else { INFEASIBLE })
    }
}

impl<O: Objective> Gradient for Problem<'_, O> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        let mut g = vec![0.0; theta.len()];
        let v = self.obj.eval(theta, Some(&mut g));
        for ((g, t), c) in g.iter_mut().zip(theta).zip(self.center) {
            *g += 2.0 * self.coef * (t - c);
        }
        if v.is_finite() && g.iter().all(|x| x.is_finite()) {
            Ok(g)
        } else {
            Err(argmin::core::Error::msg("non-finite gradient"))
        }
    }
}

/// Minimises `obj` (plus the penalty toward `start`) from `start` (log-parameters); returns the
/// best point and its cost.
pub(super) fn minimise<O: Objective>(
    obj: &O,
    start: Vec<f64>,
    opts: &FitOptions,
    model: &'static str,
) -> Result<(Vec<f64>, f64)> {
    let center = start.clone();
    let problem = || Problem {
        obj,
        coef: opts.penalizer,
        center: &center,
    };
    let max_iters = opts.max_iters;
    let fail = |reason: String| ClvError::Fit { model, reason };
    let mut best_cost = problem().cost(&start).map_err(|e| fail(e.to_string()))?;
    if best_cost >= INFEASIBLE {
        return Err(fail(
            "the log-likelihood is not finite at the starting point".into(),
        ));
    }
    let mut best = start;
    // Nelder-Mead can stall on a collapsed simplex; restarting from its best vertex with a fresh
    // simplex until the cost stops improving makes it reliable.
    let mut step = 1.0;
    for _ in 0..20 {
        let mut simplex = vec![best.clone()];
        for i in 0..best.len() {
            let mut v = best.clone();
            v[i] += step;
            simplex.push(v);
        }
        let solver = NelderMead::new(simplex)
            .with_sd_tolerance(1e-13)
            .map_err(|e| fail(e.to_string()))?;
        let res = Executor::new(problem(), solver)
            .configure(|s| s.max_iters(max_iters))
            .run()
            .map_err(|e| fail(format!("Nelder-Mead: {e}")))?;
        let state = res.state();
        let cost = state.get_best_cost();
        let improved = cost < best_cost - 1e-12 * best_cost.abs().max(1.0);
        if cost < best_cost
            && let Some(p) = state.get_best_param()
        {
            best = p.clone();
            best_cost = cost;
        }
        if !improved {
            break;
        }
        step = 0.3;
    }
    // Polish with L-BFGS on the analytic gradient; keep it only if it is better.
    let linesearch = MoreThuenteLineSearch::new();
    if let Ok(solver) = LBFGS::new(linesearch, 7)
        .with_tolerance_grad(1e-12)
        .and_then(|s| s.with_tolerance_cost(1e-15))
        && let Ok(res) = Executor::new(problem(), solver)
            .configure(|s| s.param(best.clone()).max_iters(200))
            .run()
    {
        let state = res.state();
        let cost = state.get_best_cost();
        if cost.is_finite()
            && cost < best_cost
            && let Some(p) = state.get_best_param()
            && p.iter().all(|t| t.is_finite() && t.abs() <= THETA_WALL)
        {
            best = p.clone();
            best_cost = cost;
        }
    }
    // A last check that this is a stationary point, not a stall. (Parameters that ran off are
    // left to `params_from_theta`, which says so more helpfully.)
    if best.iter().all(|t| t.abs() <= THETA_BOUNDARY) {
        let grad = problem()
            .gradient(&best)
            .map_err(|e| fail(format!("at the optimum: {e}")))?;
        let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        if norm > 1e-3 {
            return Err(fail(format!(
                "did not converge (gradient norm {norm:.2e} at the best point found); use more \
                 data or FitOptions::penalizer > 0"
            )));
        }
    }
    Ok((best, best_cost))
}

/// Turns fitted log-parameters into parameters, failing on any that ran off to 0 or infinity.
pub(super) fn params_from_theta(
    theta: &[f64],
    names: &[&str],
    model: &'static str,
    hint: &str,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(theta.len());
    for (t, name) in theta.iter().zip(names) {
        let v = t.exp();
        if !t.is_finite() || !v.is_finite() {
            return Err(ClvError::Fit {
                model,
                reason: format!("parameter {name} is not finite"),
            });
        }
        if t.abs() > THETA_BOUNDARY {
            return Err(ClvError::Fit {
                model,
                reason: format!(
                    "parameter {name} ran off to {v:e} instead of converging: the data cannot \
                     identify the model ({hint}); use more data or FitOptions::penalizer > 0"
                ),
            });
        }
        out.push(v);
    }
    Ok(out)
}

/// Asserts that `obj`'s analytic gradient at `theta` agrees with central differences of its
/// value (the tests of each model's objective use it).
#[cfg(test)]
pub(super) fn check_gradient<O: Objective>(obj: &O, theta: &[f64]) {
    let mut g = vec![0.0; theta.len()];
    obj.eval(theta, Some(&mut g));
    for i in 0..theta.len() {
        let h = 1e-6;
        let (mut up, mut down) = (theta.to_vec(), theta.to_vec());
        up[i] += h;
        down[i] -= h;
        let fd = (obj.eval(&up, None) - obj.eval(&down, None)) / (2.0 * h);
        assert!(
            (fd - g[i]).abs() < 1e-6 * fd.abs().max(1.0),
            "{i}: {fd} vs {}",
            g[i]
        );
    }
}

# Bayesian reference numbers from R's brms (Stan via rstan) for the Python test suite.
#
# Run from the repository root:
#     Rscript tools/reference/make_brms_reference.R
#
# Reads   tests/data/reference/synthetic_bayes.csv    (tools/reference/export_inputs.py)
#         tests/data/reference/effects_snapshot.csv  (rows with family == "energy")
# Writes  tests/data/reference/brms_reference.json
#
# Model: yi | se(sei) ~ 1 + (1 | study/condition), priors below (the sd priors are
# half-normal through brms' lower bound of 0 on sd parameters).  Every number is computed
# here; doubles are written with 17 significant digits.

suppressPackageStartupMessages({
  library(brms)
  library(posterior)
  library(jsonlite)
})

t_start <- proc.time()[["elapsed"]]
if (!file.exists(file.path("tools", "reference", "common.R"))) {
  stop("run from the repository root: Rscript tools/reference/make_brms_reference.R")
}
source(file.path("tools", "reference", "common.R"))
ref <- function(name) file.path("tests", "data", "reference", name)
tic <- function() proc.time()[["elapsed"]]
md5_text <- function(txt) {
  f <- tempfile()
  on.exit(unlink(f))
  writeLines(as.character(txt), f)
  unname(tools::md5sum(f))
}

SEED <- 20261201
CHAINS <- 4
ITER <- 6000
WARMUP <- 1000
ADAPT_DELTA <- 0.99
CORES <- min(CHAINS, max(1L, parallel::detectCores(), na.rm = TRUE))
PROBS <- c(0.025, 0.5, 0.975)
VARIABLES <- c("b_Intercept", "sd_study__Intercept", "sd_study:condition__Intercept")

priors <- c(
  prior(normal(0, 0.5), class = Intercept),
  prior(normal(0, 0.25), class = sd, group = study),
  prior(normal(0, 0.1), class = sd, group = study:condition)
)
form <- bf(yi | se(sei) ~ 1 + (1 | study / condition))

read_ref <- function(name) read.csv(ref(name), stringsAsFactors = FALSE, na.strings = "")
syn <- read_ref("synthetic_bayes.csv")
snap <- read_ref("effects_snapshot.csv")
energy <- snap[snap$family == "energy", c("row_id", "study", "condition", "yi", "vi", "sei")]

qname <- function(p) sprintf("q%s", format(100 * p, trim = TRUE, drop0trailing = TRUE))

summarise_variable <- function(draws, v) {
  x <- extract_variable_matrix(draws, v)  # iterations x chains
  q <- quantile(as.vector(x), probs = PROBS, names = FALSE, type = 7)
  mq <- mcse_quantile(x, probs = PROBS)
  c(
    list(mean = mean(x), sd = sd(as.vector(x))),
    setNames(as.list(q), qname(PROBS)),
    list(mcse_mean = mcse_mean(x), mcse_sd = mcse_sd(x)),
    setNames(as.list(as.numeric(mq)), paste0("mcse_", qname(PROBS))),
    list(rhat = rhat(x), ess_bulk = ess_bulk(x), ess_tail = ess_tail(x))
  )
}

sampler_fields <- function(fit) {
  np <- nuts_params(fit)
  max_td <- fit$fit@stan_args[[1]]$control$max_treedepth %||% 10
  el <- rstan::get_elapsed_time(fit$fit)
  list(
    divergences = as.integer(sum(np$Value[np$Parameter == "divergent__"])),
    max_treedepth = as.integer(max_td),
    treedepth_hits = as.integer(sum(np$Value[np$Parameter == "treedepth__"] >= max_td)),
    draws = as.integer(ndraws(fit)),
    chains = as.integer(nchains(fit)),
    draws_per_chain = as.integer(niterations(as_draws_array(fit, variable = "b_Intercept"))),
    warmup_seconds = as.numeric(sum(el[, "warmup"])),
    sampling_seconds = as.numeric(sum(el[, "sample"]))
  )
}

fit_one <- function(data, previous = NULL) {
  args <- list(chains = CHAINS, iter = ITER, warmup = WARMUP, seed = SEED,
               control = list(adapt_delta = ADAPT_DELTA), cores = CORES, refresh = 0)
  if (is.null(previous)) {
    do.call(brm, c(list(formula = form, data = data, prior = priors, backend = "rstan"), args))
  } else {
    # Same Stan program: reuse the compiled model, only the data change.
    do.call(update, c(list(object = previous, newdata = data, recompile = FALSE), args))
  }
}

analyses <- list(
  synthetic_bayes = list(input = "synthetic_bayes.csv", subset = "all rows", data = syn),
  effects_snapshot_energy = list(input = "effects_snapshot.csv", subset = "family == 'energy'",
                                 data = energy)
)

timing <- list()
results <- list()
previous <- NULL
for (name in names(analyses)) {
  an <- analyses[[name]]
  t0 <- tic()
  a <- attempt(fit_one(an$data, previous))
  timing[[paste0(name, "_seconds")]] <- tic() - t0
  entry <- list(input = an$input, subset = an$subset, k = nrow(an$data),
                n_study = length(unique(an$data$study)),
                n_condition = length(unique(paste(an$data$study, an$data$condition))))
  if (!is.null(an$data$row_id)) entry$row_ids <- as.list(an$data$row_id)
  if (failed(a)) {
    results[[name]] <- c(entry, list(ok = FALSE, error = a$value$message, warnings = a$warnings))
    next
  }
  fit <- a$value
  if (is.null(previous)) previous <- fit
  draws <- as_draws_df(fit, variable = VARIABLES)
  results[[name]] <- c(entry, list(
    ok = TRUE, warnings = a$warnings,
    parameters = lapply(setNames(nm = VARIABLES), function(v) summarise_variable(draws, v)),
    sampler = sampler_fields(fit),
    stan_code_md5 = md5_text(stancode(fit))
  ))
}

timing$total_seconds <- tic() - t_start

result <- list(
  metadata = list(
    script = "tools/reference/make_brms_reference.R",
    R = R.version.string, platform = R.version$platform,
    packages = list(brms = pkg_version("brms"), rstan = pkg_version("rstan"),
                    StanHeaders = pkg_version("StanHeaders"), posterior = pkg_version("posterior"),
                    BH = pkg_version("BH"), RcppEigen = pkg_version("RcppEigen"),
                    jsonlite = pkg_version("jsonlite"), cmdstanr = pkg_version("cmdstanr")),
    backend = "rstan", stan_version = rstan::stan_version(),
    date_utc = format(Sys.time(), "%Y-%m-%dT%H:%M:%SZ", tz = "UTC"),
    model = list(
      formula = "yi | se(sei) ~ 1 + (1 | study/condition)",
      priors = as.list(paste0(priors$prior, " [class = ", priors$class,
                              ifelse(nzchar(priors$group), paste0(", group = ", priors$group), ""),
                              "]")),
      sd_priors = "half-normal: brms bounds sd parameters below at 0",
      chains = CHAINS, iter = ITER, warmup = WARMUP, seed = SEED, adapt_delta = ADAPT_DELTA,
      cores = CORES
    ),
    summaries = paste("mean, sd and quantiles (type 7) over all post-warmup draws;",
                      "mcse_*, rhat (rank-normalized split-Rhat), ess_bulk, ess_tail from the",
                      "posterior package"),
    numbers = "doubles with 17 significant digits; null = not available",
    timing = timing
  ),
  inputs = lapply(setNames(nm = c("synthetic_bayes.csv", "effects_snapshot.csv")),
                  function(f) list(md5 = md5(ref(f)), n_rows = nrow(read_ref(f)))),
  fits = results
)
write_json_full(result, ref("brms_reference.json"))
cat(sprintf("wrote %s (%.1f s)\n", ref("brms_reference.json"), tic() - t_start))

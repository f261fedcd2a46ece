# Reference numbers from R's metafor for the Python test suite.
#
# Run from the repository root:
#     Rscript tools/reference/make_reference.R
#
# Reads   tests/data/reference/effects_snapshot.csv  (tools/reference/export_inputs.py)
#         tests/data/reference/synthetic_bayes.csv    (tools/reference/export_inputs.py)
# Writes  tests/data/reference/metafor_dat_bcg.csv
#         tests/data/reference/metafor_dat_konstantopoulos2011.csv
#         tests/data/reference/metafor_datasets.json  (citations, from the datasets' help pages)
#         tests/data/reference/metafor_reference.json
#
# Every number is computed here; doubles are written with 17 significant digits
# (exact round trip).  Nothing in the outputs depends on where the repository lives.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

t_start <- proc.time()[["elapsed"]]
if (!file.exists(file.path("tools", "reference", "common.R"))) {
  stop("run from the repository root: Rscript tools/reference/make_reference.R")
}
ref_rel <- file.path("tests", "data", "reference")
ref <- function(name) file.path(ref_rel, name)

source(file.path("tools", "reference", "common.R"))

# test = "adhoc": Knapp-Hartung with its scale factor floored at 1 (never narrower than Wald).
adhoc_supported <- grepl('"adhoc"', paste(deparse(body(metafor::rma.uni)), collapse = " "), fixed = TRUE)

record <- function(a, fields) {
  if (failed(a)) return(list(ok = FALSE, error = a$value$message, warnings = a$warnings))
  c(list(ok = TRUE, warnings = a$warnings), fields(a$value))
}

nb <- function(x) setNames(as.numeric(x), NULL)  # strip names/matrix

pred_fields <- function(p) list(pred = nb(p$pred), se = nb(p$se), ci.lb = nb(p$ci.lb),
                                ci.ub = nb(p$ci.ub), pi.lb = nb(p$pi.lb), pi.ub = nb(p$pi.ub))

coef_row <- function(tab, row) {
  list(estimate = nb(tab[row, 1]), se = nb(tab[row, 2]), tval = nb(tab[row, 3]), pval = nb(tab[row, 4]))
}

# ------------------------------------------------------- univariate (rma) ----

univariate <- function(yi, vi) {
  k <- length(yi)
  out <- list(k = k)

  a <- attempt(rma(yi, vi, method = "REML"))
  out$reml <- record(a, function(r) list(
    beta = nb(r$beta), se = nb(r$se), zval = nb(r$zval), pval = nb(r$pval),
    ci.lb = nb(r$ci.lb), ci.ub = nb(r$ci.ub), tau2 = nb(r$tau2), se.tau2 = nb(r$se.tau2),
    QE = nb(r$QE), QEp = nb(r$QEp), I2_percent = nb(r$I2), H2 = nb(r$H2), k = r$k))
  res <- if (failed(a)) NULL else a$value

  out$reml_predict <- if (is.null(res)) list(ok = FALSE, error = "REML fit failed") else
    record(attempt(predict(res)), pred_fields)

  # Tight convergence: the default threshold (1e-5 on the change in tau2) limits the
  # precision of tau2 and of everything that depends on it.
  out$reml_tight <- record(
    attempt(rma(yi, vi, method = "REML", control = list(threshold = 1e-12, maxiter = 10000))),
    function(r) list(beta = nb(r$beta), se = nb(r$se), ci.lb = nb(r$ci.lb), ci.ub = nb(r$ci.ub),
                     tau2 = nb(r$tau2), se.tau2 = nb(r$se.tau2), I2_percent = nb(r$I2),
                     H2 = nb(r$H2), threshold = 1e-12))

  for (tst in c("knha", "adhoc")) {
    if (tst == "adhoc" && !adhoc_supported) {
      out[[tst]] <- list(ok = FALSE, supported = FALSE,
                         skipped = "test = 'adhoc' not available in this metafor version")
      next
    }
    b <- attempt(rma(yi, vi, method = "REML", test = tst))
    out[[tst]] <- record(b, function(r) {
      p <- predict(r)
      list(test = tst, beta = nb(r$beta), se = nb(r$se), tval = nb(r$zval), df = nb(r$ddf),
           pval = nb(r$pval), ci.lb = nb(r$ci.lb), ci.ub = nb(r$ci.ub), s2w = nb(r$s2w),
           predict = pred_fields(p),
           supported = TRUE, pi_note = "predict(): t quantile with df = k - p (k - 1 here)")
    })
  }

  if (!is.null(res)) {
    out$egger_lm <- record(attempt(regtest(res, model = "lm")), function(e) {
      tab <- summary(e$fit)$coefficients
      list(model = "lm", predictor = e$predictor, tval = nb(e$zval), df = nb(e$dfs),
           pval = nb(e$pval), est = nb(e$est), est.ci.lb = nb(e$ci.lb), est.ci.ub = nb(e$ci.ub),
           intercept = coef_row(tab, 1), slope = coef_row(tab, 2),
           fit = "lm(yi ~ sei, weights = 1/vi); test on the slope, est = intercept")
    })
    out$egger_rma <- record(attempt(regtest(res)), function(e) {
      tab <- coef(summary(e$fit))
      list(model = "rma", predictor = e$predictor, zval = nb(e$zval), pval = nb(e$pval),
           est = nb(e$est), est.ci.lb = nb(e$ci.lb), est.ci.ub = nb(e$ci.ub),
           slope_estimate = nb(tab[2, "estimate"]), slope_se = nb(tab[2, "se"]),
           tau2_residual = nb(e$fit$tau2),
           fit = "rma(yi, vi, mods = ~ sei, method = 'REML'); test on the slope, est = intercept")
    })
  }

  wls <- function(form, d) {
    if (k < 3) return(list(ok = FALSE, skipped = "k < 3"))
    record(attempt(lm(form, data = d, weights = 1 / vi)), function(f) {
      tab <- summary(f)$coefficients
      list(intercept = coef_row(tab, 1), slope = coef_row(tab, 2), df = nb(f$df.residual),
           pval_note = "two-sided, t with k - 2 df")
    })
  }
  d <- data.frame(yi = yi, vi = vi, sei = sqrt(vi))
  out$pet <- wls(yi ~ sei, d)
  out$peese <- wls(yi ~ vi, d)
  out
}

# ----------------------------------------------------- multilevel (rma.mv) ----

mv_fields <- function(r, newmods = NULL) {
  f <- list(
    beta = setNames(as.numeric(r$beta), rownames(r$beta)),
    se = setNames(as.numeric(r$se), rownames(r$beta)),
    zval = setNames(as.numeric(r$zval), rownames(r$beta)),
    pval = setNames(as.numeric(r$pval), rownames(r$beta)),
    ci.lb = setNames(as.numeric(r$ci.lb), rownames(r$beta)),
    ci.ub = setNames(as.numeric(r$ci.ub), rownames(r$beta)),
    sigma2 = setNames(as.numeric(r$sigma2), r$s.names),
    sigma2_total = sum(r$sigma2),
    s.nlevels = setNames(as.integer(r$s.nlevels), r$s.names),
    logLik_REML = as.numeric(logLik(r)),
    QE = nb(r$QE), QEp = nb(r$QEp), k = r$k
  )
  if (is.null(newmods)) {
    f$predict <- pred_fields(predict(r))
  } else {
    p <- predict(r, newmods = newmods)
    f$predict <- lapply(setNames(seq_len(nrow(newmods)), rownames(r$beta)), function(i) {
      list(pred = p$pred[i], se = p$se[i], ci.lb = p$ci.lb[i], ci.ub = p$ci.ub[i],
           pi.lb = p$pi.lb[i], pi.ub = p$pi.ub[i])
    })
  }
  f$pi_note <- "predict() without random-effect levels: z quantile, variance = se^2 + sum(sigma2)"
  f
}

multilevel <- function(d, random, mods = NULL) {
  fit <- function(ctrl) {
    if (is.null(mods)) rma.mv(yi, vi, random = random, data = d, method = "REML", control = ctrl)
    else rma.mv(yi, vi, mods = mods, random = random, data = d, method = "REML", control = ctrl)
  }
  newmods <- NULL
  out <- list()
  a <- attempt(fit(list()))
  if (!failed(a) && !is.null(mods)) newmods <- diag(length(a$value$beta))
  out$reml <- record(a, function(r) mv_fields(r, newmods))
  # The REML surface is flat near its maximum: refit with other optimizers and record
  # how far their optima are from the default one (a guide for test tolerances).
  alts <- list(
    optim_BFGS = list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14),
    optim_NelderMead = list(optimizer = "optim", optmethod = "Nelder-Mead", reltol = 1e-14, maxit = 10000),
    nlm = list(optimizer = "nlm", gradtol = 1e-12, steptol = 1e-12)
  )
  out$reml_other_optimizers <- lapply(alts, function(ctrl) {
    record(attempt(fit(ctrl)), function(r) list(
      control = lapply(ctrl, function(v) if (is.numeric(v)) as.numeric(v) else v),
      beta = setNames(as.numeric(r$beta), rownames(r$beta)),
      sigma2 = setNames(as.numeric(r$sigma2), r$s.names),
      logLik_REML = as.numeric(logLik(r))))
  })
  if (!failed(a)) {
    ok <- Filter(function(x) isTRUE(x$ok), out$reml_other_optimizers)
    s0 <- as.numeric(a$value$sigma2)
    b0 <- as.numeric(a$value$beta)
    out$optimizer_spread <- list(
      n_optimizers = length(ok) + 1L,
      sigma2_max_abs_diff = max(c(0, unlist(lapply(ok, function(x) abs(unlist(x$sigma2) - s0))))),
      beta_max_abs_diff = max(c(0, unlist(lapply(ok, function(x) abs(unlist(x$beta) - b0))))),
      logLik_max_abs_diff = max(c(0, unlist(lapply(ok, function(x) abs(x$logLik_REML - as.numeric(logLik(a$value))))))))
  }
  out
}

# ------------------------------------------------------------- datasets ----

rd_text <- function(pkg, topic, tag) {
  rd <- tools::Rd_db(pkg)[[paste0(topic, ".Rd")]]
  tags <- vapply(rd, function(x) attr(x, "Rd_tag") %||% "", character(1))
  trimws(gsub("\\s+", " ", paste(unlist(rd[[which(tags == tag)]]), collapse = "")))
}
ds_pkg <- sub("^package:", "", find("dat.bcg")[1])

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg_df <- data.frame(
  trial = as.integer(bcg$trial), author = as.character(bcg$author), year = as.integer(bcg$year),
  tpos = as.integer(bcg$tpos), tneg = as.integer(bcg$tneg), cpos = as.integer(bcg$cpos),
  cneg = as.integer(bcg$cneg), ablat = as.integer(bcg$ablat), alloc = as.character(bcg$alloc),
  yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi), stringsAsFactors = FALSE
)
write_csv_full(bcg_df, ref("metafor_dat_bcg.csv"))

konst <- dat.konstantopoulos2011
konst_df <- data.frame(
  district = as.integer(konst$district), school = as.integer(konst$school),
  study = as.integer(konst$study), year = as.integer(konst$year),
  yi = as.numeric(konst$yi), vi = as.numeric(konst$vi)
)
write_csv_full(konst_df, ref("metafor_dat_konstantopoulos2011.csv"))

datasets_note <- list(
  note = paste("Exported from R by tools/reference/make_reference.R; title and source",
               "are copied from the datasets' help pages."),
  package = ds_pkg, package_version = as.character(packageVersion(ds_pkg)),
  metafor_version = as.character(packageVersion("metafor")),
  files = list(
    metafor_dat_bcg.csv = list(
      dataset = "dat.bcg", title = rd_text(ds_pkg, "dat.bcg", "\\title"),
      source = rd_text(ds_pkg, "dat.bcg", "\\source"),
      derived = paste("yi, vi = escalc(measure = 'RR', ai = tpos, bi = tneg, ci = cpos,",
                      "di = cneg): log risk ratio and its sampling variance")),
    metafor_dat_konstantopoulos2011.csv = list(
      dataset = "dat.konstantopoulos2011",
      title = rd_text(ds_pkg, "dat.konstantopoulos2011", "\\title"),
      source = rd_text(ds_pkg, "dat.konstantopoulos2011", "\\source"),
      derived = "columns as in the dataset (yi: standardized mean difference, vi: its variance)")
  )
)
write_json_full(datasets_note, ref("metafor_datasets.json"))

# Analyses run on the CSV files as read back, so both languages see the same inputs.
read_ref <- function(name) read.csv(ref(name), stringsAsFactors = FALSE, na.strings = "")
bcg_in <- read_ref("metafor_dat_bcg.csv")
konst_in <- read_ref("metafor_dat_konstantopoulos2011.csv")
snap <- read_ref("effects_snapshot.csv")
syn <- read_ref("synthetic_bayes.csv")
stopifnot(identical(bcg_in$yi, bcg_df$yi), identical(bcg_in$vi, bcg_df$vi),
          identical(konst_in$yi, konst_df$yi))

inputs <- lapply(setNames(nm = c("effects_snapshot.csv", "synthetic_bayes.csv",
                                 "metafor_dat_bcg.csv", "metafor_dat_konstantopoulos2011.csv")),
                 function(f) list(md5 = md5(ref(f)), n_rows = nrow(read_ref(f))))

# ------------------------------------------------------------- analyses ----

timing <- list()
tic <- function() proc.time()[["elapsed"]]

t0 <- tic()
uni <- list()
uni$dat.bcg <- c(list(input = "metafor_dat_bcg.csv", subset = "all rows"),
                 univariate(bcg_in$yi, bcg_in$vi))

fams <- sort(unique(snap$family))
uni_fam <- list()
uni_skip <- list()
for (f in fams) {
  d <- snap[snap$family == f, ]
  if (nrow(d) < 2) {
    uni_skip[[length(uni_skip) + 1]] <- list(family = f, k = nrow(d), reason = "k < 2")
    next
  }
  uni_fam[[f]] <- c(list(input = "effects_snapshot.csv", subset = sprintf("family == '%s'", f),
                         row_ids = as.list(d$row_id)),
                    univariate(d$yi, d$vi))
}
uni$effects_snapshot <- list(input = "effects_snapshot.csv", families = uni_fam, skipped = uni_skip)
timing$univariate_seconds <- tic() - t0

t0 <- tic()
mv <- list()
mv$dat.konstantopoulos2011 <- c(
  list(input = "metafor_dat_konstantopoulos2011.csv", random = "~ 1 | district/school", k = nrow(konst_in)),
  multilevel(konst_in, ~ 1 | district / school))

mv_fam <- list()
mv_skip <- list()
for (f in fams) {
  d <- snap[snap$family == f, ]
  n_study <- length(unique(d$study))
  if (n_study < 2) {
    mv_skip[[length(mv_skip) + 1]] <- list(family = f, k = nrow(d), n_study = n_study,
                                           reason = "fewer than 2 studies")
    next
  }
  mv_fam[[f]] <- c(
    list(input = "effects_snapshot.csv", subset = sprintf("family == '%s'", f),
         random = "~ 1 | study/condition", row_ids = as.list(d$row_id), k = nrow(d),
         n_study = n_study, n_condition = length(unique(paste(d$study, d$condition))),
         components_separable = any(table(d$study) > 1),
         separable_note = paste("with one condition per study the two variance components",
                                "are not separately identified (only their sum is)")),
    multilevel(d, ~ 1 | study / condition))
}
all_fam <- c(
  list(input = "effects_snapshot.csv", subset = "all rows", random = "~ 1 | study/condition",
       mods = "~ 0 + factor(family)", family_levels = as.list(levels(factor(snap$family))),
       k = nrow(snap), n_study = length(unique(snap$study))),
  multilevel(snap, ~ 1 | study / condition, mods = ~ 0 + factor(family)))
mv$effects_snapshot <- list(input = "effects_snapshot.csv", families = mv_fam, skipped = mv_skip,
                            all_families = all_fam)
mv$synthetic_bayes <- c(
  list(input = "synthetic_bayes.csv", random = "~ 1 | study/condition", k = nrow(syn),
       n_study = length(unique(syn$study))),
  multilevel(syn, ~ 1 | study / condition))
timing$multilevel_seconds <- tic() - t0

timing$total_seconds <- tic() - t_start

result <- list(
  metadata = list(
    script = "tools/reference/make_reference.R",
    R = R.version.string, platform = R.version$platform,
    packages = list(metafor = pkg_version("metafor"), metadat = pkg_version("metadat"),
                    jsonlite = pkg_version("jsonlite"), brms = pkg_version("brms"),
                    rstan = pkg_version("rstan"), StanHeaders = pkg_version("StanHeaders"),
                    cmdstanr = pkg_version("cmdstanr"), posterior = pkg_version("posterior")),
    adhoc_test_supported = adhoc_supported,
    date_utc = format(Sys.time(), "%Y-%m-%dT%H:%M:%SZ", tz = "UTC"),
    numbers = "doubles with 17 significant digits; I2 in percent; null = not available",
    timing = timing
  ),
  inputs = inputs,
  univariate = uni,
  multilevel = mv
)
write_json_full(result, ref("metafor_reference.json"))
cat(sprintf("wrote %s (%.1f s)\n", ref("metafor_reference.json"), tic() - t_start))

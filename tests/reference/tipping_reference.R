# Delta-adjusted multiple imputation on the demo panel with R mice, and Rubin's rules.
#
#   pool: mice::pool.scalar(Q, U, n, k) on fixed estimates/variances (Barnard-Rubin df, dfcom = n - k).
#   mi:   the baseline cohort of eff_leadership; follow-up answer missing for those who did not answer it;
#         mice(method = "norm", m = 400) imputing follow_up from baseline + status, with the imputed values
#         shifted by delta * SD(baseline) through mice's `post` (the standard delta adjustment); the
#         pooled mean change follow_up - baseline for delta = 0 and -0.5. Monte Carlo: compared loosely.
#
# Run from the repository root:  Rscript tests/reference/tipping_reference.R
# Reads fixtures/demo_panel.csv; writes fixtures/tipping_reference.json.
suppressPackageStartupMessages({library(mice); library(jsonlite)})
here <- "tests/reference/fixtures"
panel <- read.csv(file.path(here, "demo_panel.csv"), stringsAsFactors = FALSE, colClasses = c(value = "numeric"))
d <- panel[panel$measure == "eff_leadership", ]
d$person <- paste(d$council_code, d$respondent_id)
b <- d[d$wave == "baseline", ]; b <- b[!duplicated(b$person), ]
f <- d[d$wave == "follow_up", ]; f <- f[!duplicated(f$person), ]
cohort <- data.frame(baseline = b$value, status = factor(b$status), follow_up = f$value[match(b$person, f$person)])
sd0 <- sd(cohort$baseline)

pooled <- function(delta) {
  meth <- make.method(cohort); meth[] <- ""; meth["follow_up"] <- "norm"
  post <- make.post(cohort); post["follow_up"] <- sprintf("imp[[j]][, i] <- imp[[j]][, i] + %.17g", delta * sd0)
  imp <- mice(cohort, m = 400, method = meth, post = post, printFlag = FALSE, seed = 11, maxit = 1)
  est <- sapply(seq_len(imp$m), function(k) { c <- complete(imp, k); mean(c$follow_up - c$baseline) })
  mean(est)
}
Q <- c(0.51, 0.55, 0.62, 0.48, 0.57); U <- c(0.011, 0.012, 0.010, 0.013, 0.011)
p <- pool.scalar(Q, U, n = 22, k = 1)
out <- list(versions = list(R = R.version.string, mice = as.character(packageVersion("mice"))),
            pool = list(Q = Q, U = U, complete_df = 21, qbar = p$qbar, t = p$t, df = p$df),
            mi = list(sd = sd0, n_cohort = nrow(cohort), n_missing = sum(is.na(cohort$follow_up)),
                      estimate_0 = pooled(0), estimate_minus_half = pooled(-0.5)))
write_json(out, file.path(here, "tipping_reference.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)

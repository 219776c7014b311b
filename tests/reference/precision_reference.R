# ICC by one-way ANOVA with Searle's F interval (computed from aov's mean squares), the REML ICC of
# lmer(value ~ 1 + (1 | council)) for comparison, baseline SDs, and the minimum detectable effect
# from R's own t quantiles.
#
# Run from the repository root:  Rscript tests/reference/precision_reference.R
# Reads fixtures/demo_panel.csv; writes fixtures/precision_reference.json.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
here <- "tests/reference/fixtures"
panel <- read.csv(file.path(here, "demo_panel.csv"), stringsAsFactors = FALSE, colClasses = c(value = "numeric"))
out <- list(versions = list(R = R.version.string))
for (m in c("eff_leadership", "eff_voice")) {
  rows <- list()
  for (w in c("baseline", "early_impact", "follow_up")) {
    d <- panel[panel$measure == m & panel$wave == w, ]
    d$council_code <- factor(d$council_code)
    tab <- summary(aov(value ~ council_code, data = d))[[1]]
    msb <- tab[1, "Mean Sq"]; msw <- tab[2, "Mean Sq"]
    K <- nlevels(d$council_code); N <- nrow(d); n <- table(d$council_code)
    n0 <- (N - sum(n^2) / N) / (K - 1)
    F <- msb / msw
    fl <- F / qf(0.975, K - 1, N - K); fu <- F * qf(0.975, N - K, K - 1)
    clip <- function(x) min(max(x, 0), 1)
    vc <- as.data.frame(VarCorr(lmer(value ~ 1 + (1 | council_code), data = d, REML = TRUE)))
    rows[[length(rows) + 1]] <- list(wave = w, icc = max((msb - msw) / (msb + (n0 - 1) * msw), 0),
                                     ci_low = clip((fl - 1) / (fl + n0 - 1)), ci_high = clip((fu - 1) / (fu + n0 - 1)),
                                     icc_reml = vc$vcov[1] / sum(vc$vcov), n_obs = N, n_councils = K)
  }
  sd_base <- sd(panel$value[panel$measure == m & panel$wave == "baseline"])
  out[[m]] <- list(icc = rows, sd = sd_base)
}
mde <- function(K, m, icc) (qt(0.975, K - 1) + qt(0.8, K - 1)) * sqrt(2 * (1 + (m - 1) * icc) / (K * m))
out$mde <- list(list(councils = 6, per_council = 3, icc = 0.1, mde = mde(6, 3, 0.1)),
                list(councils = 40, per_council = 2.4, icc = 0.25, mde = mde(40, 2.4, 0.25)),
                list(councils = 152, per_council = 200, icc = 0.05, mde = mde(152, 200, 0.05)))
write_json(out, file.path(here, "precision_reference.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)

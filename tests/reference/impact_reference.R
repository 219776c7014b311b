# Reference values from R for the impact stage: every unconditional Callaway & Sant'Anna ATT(g, t)
# as a plain lm() 2x2 difference-in-differences regression.
#
# Builds a deterministic staggered panel (60 councils x 12 years, cohorts 2014, 2015 and 2017 with 6
# councils each, the rest never treated, council and year effects, growing effects, noise), writes it
# to fixtures/impact_panel.csv, and for each comparison group (never treated; not yet treated) and
# anticipation (0, 1) writes every ATT(g, t) to fixtures/impact_att_gt.csv:
#
#   post periods (t >= g - anticipation): base year b = g - 1 - anticipation;
#   pre periods: b = t - 1 (R did's varying base period);
#   comparison: never treated, or also councils first treated after max(t, b) + anticipation;
#   ATT(g, t) = the treated:post coefficient of lm(y ~ treated * post) on the cohort's and the
#   comparison councils' rows in years b and t.
#
# tests/impact/test_reference.py reads both files; it never needs R.
# Regenerate from the repository root with:  Rscript tests/reference/impact_reference.R
here <- "tests/reference/fixtures"
dir.create(here, showWarnings = FALSE, recursive = TRUE)

set.seed(20130401)
years <- 2010:2021
n <- 60
cohort <- c(rep(2014, 6), rep(2015, 6), rep(2017, 6), rep(0, n - 18))
council <- sprintf("E%08d", 6000000 + seq_len(n))
alpha <- rnorm(n, 0, 5)
lambda <- 0.3 * (years - years[1]) + rnorm(length(years), 0, 1)
panel <- expand.grid(j = seq_along(years), i = seq_len(n))
panel$council_code <- council[panel$i]
panel$year <- years[panel$j]
panel$cohort <- cohort[panel$i]
effect <- ifelse(panel$cohort > 0 & panel$year >= panel$cohort,
                 2 * pmin(panel$year - panel$cohort + 1, 3) * (1 + 0.3 * (panel$i %% 3)), 0)
panel$y <- round(50 + alpha[panel$i] + lambda[panel$j] + effect + rnorm(nrow(panel), 0, 2), 6)
panel <- panel[, c("council_code", "year", "cohort", "y")]
write.csv(panel, file.path(here, "impact_panel.csv"), row.names = FALSE)

rows <- list()
for (comparison in c("never_treated", "not_yet_treated")) {
  for (anticipation in 0:1) {
    for (g in sort(unique(cohort[cohort > 0]))) {
      for (t in years[-1]) {
        b <- if (t >= g - anticipation) g - 1 - anticipation else t - 1
        if (!(b %in% years)) next
        control <- if (comparison == "never_treated") cohort == 0 else
          cohort == 0 | (cohort > max(t, b) + anticipation & cohort != g)
        units <- council[cohort == g | control]
        d <- panel[panel$council_code %in% units & panel$year %in% c(b, t), ]
        d$treated <- as.numeric(d$cohort == g)
        d$post <- as.numeric(d$year == t)
        fit <- lm(y ~ treated * post, data = d)
        rows[[length(rows) + 1]] <- data.frame(
          comparison = comparison, anticipation = anticipation, cohort = g, year = t, base = b,
          att = unname(coef(fit)["treated:post"]), n_treated = sum(cohort == g), n_comparison = sum(control))
      }
    }
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "impact_att_gt.csv"), row.names = FALSE)
cat(sprintf("%d ATT(g, t) written (%s)\n", nrow(out), R.version.string))

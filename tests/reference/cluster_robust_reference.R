# Reference values from R clubSandwich for impactstudy.model.stats.cluster_robust (CR2 / CR3 cluster-robust
# covariance, Bell-McCaffrey / Satterthwaite degrees of freedom) and the council-level models built on it.
#
# Builds a deterministic few-council panel (7 councils, 1-9 respondents each over three waves, a
# two-level council 'status', one council with a single answer, positive analytic weights), writes it to
# fixtures/cluster_robust_data.csv, fits the reference models and writes
# fixtures/cluster_robust_reference.json. tests/model/test_cluster_robust.py reads both; it never needs R.
#
# Regenerate from the repository root with:  Rscript tests/reference/cluster_robust_reference.R
suppressPackageStartupMessages({
  library(clubSandwich)
  library(jsonlite)
})

here <- "tests/reference/fixtures"
dir.create(here, showWarnings = FALSE, recursive = TRUE)
waves <- c("baseline", "early_impact", "follow_up")

# ---- data -------------------------------------------------------------------------------------
set.seed(20261201)
rows <- list()
for (i in 1:7) {
  code <- sprintf("E%08d", 7000000 + i)
  status <- if (i %% 2 == 0) "B" else "A"
  council <- rnorm(1, 0, 0.5)
  change <- rnorm(1, 0.4, 0.3)                       # councils change by different amounts
  n_resp <- if (i == 7) 1 else sample(2:9, 1)
  for (r in seq_len(n_resp)) {
    for (w in seq_along(waves)) {
      if (i == 7 && w > 1) next                       # a council with a single answer
      if (i != 7 && runif(1) < 0.15) next
      value <- 3 + council + change * (w - 1) / 2 + rnorm(1, 0, 0.7)
      rows[[length(rows) + 1]] <- data.frame(
        council_code = code, respondent_id = sprintf("R%02d-%d", i, r), wave = waves[w], status = status,
        value = round(value, 3), weight = round(runif(1, 0.3, 2.5), 3), stringsAsFactors = FALSE)
    }
  }
}
d <- do.call(rbind, rows)
write.csv(d, file.path(here, "cluster_robust_data.csv"), row.names = FALSE)
d$wave <- factor(d$wave, levels = waves)
d$status <- factor(d$status, levels = c("A", "B"))

coef_rows <- function(fit, cluster, type) {
  ct <- coef_test(fit, vcov = type, cluster = cluster, test = "Satterthwaite")
  V <- vcovCR(fit, cluster = cluster, type = type)
  list(names = names(coef(fit)), beta = unname(coef(fit)), se = ct$SE, df = ct$df_Satt, p = ct$p_Satt,
       vcov = unname(as.matrix(V)))
}

contrast_rows <- function(fit, cluster, L) {
  lc <- linear_contrast(fit, vcov = "CR2", cluster = cluster, contrasts = L, test = "Satterthwaite",
                        p_values = TRUE)
  list(L = unname(L), est = lc$Est, se = lc$SE, df = lc$df, ci_low = lc$CI_L, ci_high = lc$CI_U, p = lc$p_val)
}

out <- list(versions = list(R = R.version.string, clubSandwich = as.character(packageVersion("clubSandwich"))),
            waves = waves)

# ---- OLS on answers: value ~ wave, clustered by council ---------------------------------------------
fit <- lm(value ~ wave, data = d)
out$ols_cr2 <- coef_rows(fit, d$council_code, "CR2")
out$ols_cr3 <- coef_rows(fit, d$council_code, "CR3")
out$ols_contrast <- contrast_rows(fit, d$council_code, matrix(c(0, -1, 1), nrow = 1))   # follow_up - early_impact

# ---- weighted least squares ---------------------------------------------------------------------------
wfit <- lm(value ~ wave, data = d, weights = weight)
out$wls_cr2 <- coef_rows(wfit, d$council_code, "CR2")
out$wls_cr3 <- coef_rows(wfit, d$council_code, "CR3")

# ---- value ~ wave * status: contrasts within each level --------------------------------------------
gfit <- lm(value ~ wave * status, data = d)
out$group_cr2 <- coef_rows(gfit, d$council_code, "CR2")
# names: (Intercept), waveearly_impact, wavefollow_up, statusB, waveearly_impact:statusB, wavefollow_up:statusB
out$group_contrast_A <- contrast_rows(gfit, d$council_code, matrix(c(0, 0, 1, 0, 0, 0), nrow = 1))
out$group_contrast_B <- contrast_rows(gfit, d$council_code, matrix(c(0, 0, 1, 0, 0, 1), nrow = 1))

# ---- council x wave means with council fixed effects (council-weighted change) ---------------------
m <- aggregate(value ~ council_code + wave + status, data = d, FUN = mean)
m <- m[order(m$council_code, m$wave), ]
write.csv(m, file.path(here, "cluster_robust_means.csv"), row.names = FALSE)
ffit <- lm(value ~ wave + factor(council_code), data = m)
fe <- coef_rows(ffit, m$council_code, "CR2")
keep <- grepl("^wave", fe$names)
out$fe_cr2 <- list(names = fe$names[keep], beta = fe$beta[keep], se = fe$se[keep], df = fe$df[keep], p = fe$p[keep])

write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "cluster_robust_reference.json"))
cat("wrote", file.path(here, "cluster_robust_reference.json"), "\n")

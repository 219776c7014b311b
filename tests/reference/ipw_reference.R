# Retention weights and the weighted change model, from the demo panel alone.
#
# Cohort: respondents (council_code + respondent_id) answering at baseline. Stayed to wave k: answered
# every wave up to k (monotone). Score: per respondent and wave, the mean over eff_leadership and
# eff_voice answers of (value - baseline mean) / baseline SD of that measure; 0 when present with none.
# Step k: among those who stayed to k - 1, Firth logistic regression (brglm2, type = "AS_mean") of
# staying to k on status + baseline score (+ previous wave's score from the second step on).
# Stabilised weight at wave k: prod_j mean(stayed_j | at risk_j) / p_hat_j; truncated at the 1st and
# 99th percentiles (quantile type 7) of all later-wave weights. Baseline weight 1.
# gee_ipw: lm(value ~ wave, weights = weight) on the cohort's answers at the waves they stayed to,
# clubSandwich CR2 clustered by council with Satterthwaite (Bell-McCaffrey) df (coef_test).
#
# Run from the repository root:  Rscript tests/reference/ipw_reference.R
# Reads fixtures/demo_panel.csv; writes fixtures/ipw_weights.csv (what tables/ipw_weights.csv holds for
# this panel) and fixtures/ipw_reference.json (diagnostics and gee_ipw rows).
suppressPackageStartupMessages({library(brglm2); library(clubSandwich); library(jsonlite)})
here <- "tests/reference/fixtures"
waves <- c("baseline", "early_impact", "follow_up")
panel <- read.csv(file.path(here, "demo_panel.csv"), stringsAsFactors = FALSE, colClasses = c(value = "numeric"))
panel$person <- paste(panel$council_code, panel$respondent_id, sep = "|")
scored <- c("eff_leadership", "eff_voice")

cohort <- unique(panel$person[panel$wave == "baseline"])
b <- panel[panel$wave == "baseline", ]
people <- b[!duplicated(b$person), ]
people <- people[match(cohort, people$person), c("person", "council_code", "respondent_id", "status")]
present <- sapply(waves, function(w) cohort %in% panel$person[panel$wave == w])
stayed <- t(apply(present, 1, cumprod)) == 1
base <- panel[panel$wave == "baseline" & panel$measure %in% scored, ]
mu <- tapply(base$value, base$measure, mean); s <- tapply(base$value, base$measure, sd)
sc <- panel[panel$measure %in% scored, ]
sc$z <- (sc$value - mu[sc$measure]) / s[sc$measure]
score <- sapply(waves, function(w) {
  m <- tapply(sc$z[sc$wave == w], sc$person[sc$wave == w], mean)
  out <- unname(m[cohort]); out[is.na(out) & present[, w]] <- 0; out
})

raw <- matrix(NA_real_, length(cohort), length(waves)); raw[, 1] <- 1
cumulative <- rep(1, length(cohort))
for (k in 2:length(waves)) {
  risk <- stayed[, k - 1]
  d <- data.frame(y = as.numeric(stayed[risk, k]), status = factor(people$status[risk]), baseline = score[risk, 1])
  f <- if (k >= 3) { d$previous <- score[risk, k - 1]; y ~ status + baseline + previous } else y ~ status + baseline
  fit <- glm(f, family = binomial, data = d, method = "brglmFit", type = "AS_mean",
             control = brglmControl(epsilon = 1e-12, maxit = 500))
  ratio <- rep(1, length(cohort))
  ratio[risk] <- mean(d$y) / fitted(fit)
  cumulative <- cumulative * ratio
  raw[stayed[, k], k] <- cumulative[stayed[, k]]
}
later <- raw[, -1][!is.na(raw[, -1])]
bounds <- quantile(later, c(0.01, 0.99), type = 7)
w <- raw; w[, -1] <- pmin(pmax(raw[, -1], bounds[1]), bounds[2])
weights <- do.call(rbind, lapply(seq_along(waves), function(k) {
  keep <- !is.na(w[, k])
  data.frame(council_code = people$council_code[keep], respondent_id = people$respondent_id[keep], wave = waves[k], weight = w[keep, k])
}))
write.csv(weights, file.path(here, "ipw_weights.csv"), row.names = FALSE)
diagnostics <- lapply(2:length(waves), function(k) {
  t <- w[stayed[, k], k]
  list(wave = waves[k], at_risk = sum(stayed[, k - 1]), stayed = sum(stayed[, k]), ess = sum(t)^2 / sum(t^2),
       weight_max = max(raw[stayed[, k], k]), truncated_max = max(t))
})

rows <- list()
for (m in c("eff_leadership", "eff_voice")) {
  d <- merge(panel[panel$measure == m, c("council_code", "respondent_id", "wave", "value")], weights,
             by = c("council_code", "respondent_id", "wave"))
  d$wave <- factor(d$wave, levels = waves)
  for (p in list(c("early_impact", "baseline"), c("follow_up", "baseline"), c("follow_up", "early_impact"))) {
    # clubSandwich 0.5.8's linear_contrast fails on a weighted lm, so each contrast is made a coefficient
    # by taking its earlier wave as the reference level (CR2 and its df do not depend on the coding)
    d$w2 <- relevel(d$wave, ref = p[2])
    fit <- lm(value ~ w2, data = d, weights = weight)
    ct <- coef_test(fit, vcov = "CR2", cluster = d$council_code, test = "Satterthwaite")
    k <- paste0("w2", p[1])
    est <- ct$beta[ct$Coef == k]; se <- ct$SE[ct$Coef == k]; df <- ct$df_Satt[ct$Coef == k]
    rows[[length(rows) + 1]] <- list(measure = m, contrast = paste(p[1], "-", p[2]), estimate = est, std_error = se,
                                     df = df, ci_low = est - qt(0.975, df) * se, ci_high = est + qt(0.975, df) * se,
                                     p_value = ct$p_Satt[ct$Coef == k])
  }
}
write_json(list(versions = list(R = R.version.string, brglm2 = as.character(packageVersion("brglm2")),
                                clubSandwich = as.character(packageVersion("clubSandwich"))),
                diagnostics = diagnostics, rows = rows),
           file.path(here, "ipw_reference.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)

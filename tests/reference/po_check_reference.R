# The proportional-odds check on the demo panel.
#
#   nominal_test(clm(ordered(value) ~ wave, link = "logit")): the LRT row for wave (statistic, df, p).
#   Cut-specific log odds ratios: the data stacked once per cut-point c (y = value >= c), glm(y ~ 0 +
#   cut:wave, binomial), coefficients = logit of the share at or above c per wave; joint council-clustered
#   covariance sandwich::vcovCL(cluster = ~council, type = "HC0", cadjust = TRUE) times (n - 1) / (n - W)
#   (n answers, W waves: the CR1 factor of one cut's model, which the stacking would otherwise change).
#   A contrast's log odds ratio at c is the difference of two coefficients; the Brant-type test is the
#   Wald chi-square that all cut-points' log odds ratios are equal. Cuts where a wave's answers are all
#   on one side are left out (infinite logit), as impactstudy does.
#
# Run from the repository root:  Rscript tests/reference/po_check_reference.R
# Reads fixtures/demo_panel.csv; writes fixtures/po_check_reference.json.
suppressPackageStartupMessages({library(ordinal); library(sandwich); library(jsonlite)})
here <- "tests/reference/fixtures"
waves <- c("baseline", "early_impact", "follow_up")
pairs <- list(c("early_impact", "baseline"), c("follow_up", "baseline"), c("follow_up", "early_impact"))
panel <- read.csv(file.path(here, "demo_panel.csv"), stringsAsFactors = FALSE, colClasses = c(value = "numeric"))

out <- list(versions = list(R = R.version.string, ordinal = as.character(packageVersion("ordinal")),
                            sandwich = as.character(packageVersion("sandwich"))))
for (m in c("eff_leadership", "eff_voice")) {
  d <- panel[panel$measure == m, ]
  d$wave <- factor(d$wave, levels = waves)
  d$y <- ordered(d$value)
  nt <- nominal_test(clm(y ~ wave, data = d, link = "logit"))
  nominal <- list(statistic = nt["wave", "LRT"], df = nt["wave", "Df"], p_value = nt["wave", "Pr(>Chi)"])
  cuts <- sort(unique(d$value))[-1]
  shares <- sapply(cuts, function(c) tapply(d$value >= c, d$wave, mean))
  ok_cut <- apply(shares > 0 & shares < 1, 2, all)
  cuts <- cuts[ok_cut]
  stacked <- do.call(rbind, lapply(cuts, function(c) data.frame(council_code = d$council_code, wave = d$wave,
                                                                 cut = factor(c, levels = cuts), y = as.numeric(d$value >= c))))
  fit <- glm(y ~ 0 + cut:wave, family = binomial, data = stacked)
  V <- vcovCL(fit, cluster = ~council_code, type = "HC0", cadjust = TRUE) * (nrow(d) - 1) / (nrow(d) - length(waves))
  b <- coef(fit)
  cut_rows <- list(); brant <- list()
  for (p in pairs) {
    L <- t(sapply(cuts, function(c) {
      l <- setNames(rep(0, length(b)), names(b))
      l[paste0("cut", c, ":wave", p[1])] <- 1; l[paste0("cut", c, ":wave", p[2])] <- -1; l
    }))
    theta <- drop(L %*% b); VL <- L %*% V %*% t(L)
    for (k in seq_along(cuts)) cut_rows[[length(cut_rows) + 1]] <- list(contrast = paste(p[1], "-", p[2]), cut = cuts[k],
                                                                        estimate = theta[k], std_error = sqrt(VL[k, k]))
    D <- cbind(-1, diag(length(cuts) - 1))
    diff <- D %*% theta
    chi2 <- drop(t(diff) %*% solve(D %*% VL %*% t(D), diff))
    brant[[length(brant) + 1]] <- list(contrast = paste(p[1], "-", p[2]), statistic = chi2, df = length(cuts) - 1,
                                       p_value = pchisq(chi2, length(cuts) - 1, lower.tail = FALSE))
  }
  out[[m]] <- list(nominal = nominal, cuts = cut_rows, brant = brant)
}
write_json(out, file.path(here, "po_check_reference.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)

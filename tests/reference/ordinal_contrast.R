# The ordinal rows' model for one contrast, in R: sourced by ordinal_reference.R and demo_panel_reference.R.
#
# The answers at waves `later` and `earlier` of the councils with answers at both (within the rows given:
# one group level), each answer weighted 1/n (n: its council's answers at its wave), so every council
# counts once per wave: clm(ordered(value) ~ later, weights = w, link = "logit") with
# vcovCL(fit, cluster = council, type = "HC1"). Reference: t on G - 1 df below `few` councils at both
# waves, else normal. Fewer than 3 councils at both waves, or answers that do not overlap: not estimable.
# Also the former estimand: clm on every answer at the two waves, unweighted.
suppressPackageStartupMessages({
  library(ordinal)
  library(sandwich)
})

ordinal_contrast <- function(d, later, earlier, few = 40) {
  d <- d[d$wave %in% c(later, earlier) & !is.na(d$value), ]
  both <- intersect(unique(d$council_code[d$wave == later]), unique(d$council_code[d$wave == earlier]))
  every <- d
  d <- d[d$council_code %in% both, ]
  g <- length(both)
  out <- list(later = later, earlier = earlier, g = g, n_obs = nrow(d))
  if (g < 3) return(c(out, list(estimable = FALSE)))
  if (min(d$value[d$wave == later]) >= max(d$value[d$wave == earlier]) ||
      min(d$value[d$wave == earlier]) >= max(d$value[d$wave == later])) {
    return(c(out, list(estimable = FALSE)))   # separation: an infinite log odds ratio
  }
  d$later <- as.numeric(d$wave == later)
  d$w <- ave(rep(1, nrow(d)), d$council_code, d$wave, FUN = function(z) 1 / length(z))
  d$y <- factor(d$value, ordered = TRUE)
  ctl <- clm.control(gradTol = 1e-12, maxIter = 200)
  fit <- clm(y ~ later, data = d, weights = w, link = "logit", control = ctl)
  v <- vcovCL(fit, cluster = d$council_code, type = "HC1")
  b <- unname(fit$beta["later"])
  se <- sqrt(v["later", "later"])
  df <- if (g < few) g - 1 else NA
  q <- if (is.na(df)) qnorm(0.975) else qt(0.975, df)
  every$later <- as.numeric(every$wave == later)
  every$y <- factor(every$value, ordered = TRUE)
  old <- clm(y ~ later, data = every, link = "logit", control = ctl)
  old_v <- vcovCL(old, cluster = every$council_code, type = "HC1")
  c(out, list(estimable = TRUE, estimate = b, std_error = se, df = df,
              ci_low = b - q * se, ci_high = b + q * se, p_value = if (is.na(df)) 2 * pnorm(-abs(b / se)) else 2 * pt(-abs(b / se), df),
              thresholds = unname(fit$alpha), loglik = as.numeric(logLik(fit)),
              all_answers_estimate = unname(old$beta["later"]),
              all_answers_std_error = sqrt(old_v["later", "later"]),
              all_answers_n_obs = nrow(every)))
}


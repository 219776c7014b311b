# Differences in change between status groups, the wave x status interaction test, and the change
# adjusted for the council's starting mean, on the demo panel.
#
#   lmer(value ~ wave * status + (1 | council_code) + (1 | council_code:respondent_id)), REML;
#   lmerTest::contest1D for (later - earlier in level) - (later - earlier in Adequate), and
#   anova(fit, type = 3) (Satterthwaite) for the wave:status row: F, NumDF, DenDF, p.
#   lm(change ~ status + earlier) on council means of councils answering both waves: the status
#   coefficients (difference in change adjusted for the earlier mean), SE, df, p.
#
# Run from the repository root:  Rscript tests/reference/group_differences_reference.R
# Reads fixtures/demo_panel.csv; writes fixtures/group_differences_reference.json.
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(jsonlite)})
here <- "tests/reference/fixtures"
waves <- c("baseline", "early_impact", "follow_up")
pairs <- list(c("early_impact", "baseline"), c("follow_up", "baseline"), c("follow_up", "early_impact"))
panel <- read.csv(file.path(here, "demo_panel.csv"), stringsAsFactors = FALSE, colClasses = c(value = "numeric"))
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-10, maxfun = 1e5))
ref <- "Adequate"

out <- list(versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                            lmerTest = as.character(packageVersion("lmerTest"))))
for (m in c("eff_leadership", "eff_voice")) {
  d <- panel[panel$measure == m, ]
  d$wave <- factor(d$wave, levels = waves)
  d$status <- factor(d$status)
  fit <- lmer(value ~ wave * status + (1 | council_code) + (1 | council_code:respondent_id), data = d,
              REML = TRUE, control = ctrl)
  X <- model.matrix(~ wave * status, data = expand.grid(wave = factor(waves, levels = waves),
                                                        status = factor(levels(d$status), levels = levels(d$status))))
  cells <- expand.grid(wave = waves, status = levels(d$status), stringsAsFactors = FALSE)
  row_of <- function(w, s) X[cells$wave == w & cells$status == s, ]
  diffs <- list()
  for (s in setdiff(levels(d$status), ref)) for (p in pairs) {
    L <- (row_of(p[1], s) - row_of(p[2], s)) - (row_of(p[1], ref) - row_of(p[2], ref))
    r <- contest1D(fit, L, confint = TRUE)
    diffs[[length(diffs) + 1]] <- list(contrast = paste(p[1], "-", p[2]), group = paste0("status=", s, " - status=", ref),
                                       estimate = r$Estimate, std_error = r$`Std. Error`, df = r$df,
                                       p_value = r$`Pr(>|t|)`, ci_low = r$lower, ci_high = r$upper)
  }
  a <- anova(fit, type = 3, ddf = "Satterthwaite")
  inter <- list(F = a["wave:status", "F value"], num_df = a["wave:status", "NumDF"],
                den_df = a["wave:status", "DenDF"], p_value = a["wave:status", "Pr(>F)"])
  means <- aggregate(value ~ council_code + status + wave, data = d, FUN = mean)
  adjusted <- list()
  for (p in pairs) {
    a1 <- means[means$wave == p[1], c("council_code", "status", "value")]
    a0 <- means[means$wave == p[2], c("council_code", "value")]
    w <- merge(a1, a0, by = "council_code", suffixes = c("_later", "_earlier"))
    w$status <- relevel(factor(w$status), ref = ref)
    f <- summary(lm(I(value_later - value_earlier) ~ status + value_earlier, data = w))
    for (s in setdiff(levels(w$status), ref)) {
      k <- paste0("status", s)
      adjusted[[length(adjusted) + 1]] <- list(contrast = paste(p[1], "-", p[2]), group = paste0("status=", s, " - status=", ref),
                                               estimate = f$coefficients[k, 1], std_error = f$coefficients[k, 2],
                                               df = f$df[2], p_value = f$coefficients[k, 4])
    }
  }
  out[[m]] <- list(differences = diffs, interaction = inter, adjusted = adjusted)
}
write_json(out, file.path(here, "group_differences_reference.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)

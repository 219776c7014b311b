# The wave x status interaction test of the primary LMM (council x wave term) on the demo panel, with
# both df methods of `[models] lmm_df`:
#
#   lmer(value ~ wave * status + (1 | council_code) + (1 | council_code:wave) + (1 | council_code:respondent_id))
#   Satterthwaite: lmerTest anova(fit, type = 3, ddf = "Satterthwaite"), the wave:status row;
#   Kenward-Roger: pbkrtest::KRmodcomp(fit, L) with L selecting the wave:status coefficients (the scaled
#   F statistic, its ddf, F.scaling and the unscaled F), and lmerTest's anova(ddf = "Kenward-Roger") row
#   (the unscaled F on the same ddf) for comparison.
#
# Run from the repository root:  Rscript tests/reference/joint_test_reference.R
# Reads fixtures/demo_panel.csv; writes fixtures/joint_test_reference.json.
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)})
here <- "tests/reference/fixtures"
waves <- c("baseline", "early_impact", "follow_up")
panel <- read.csv(file.path(here, "demo_panel.csv"), stringsAsFactors = FALSE, colClasses = c(value = "numeric"))
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-10, maxfun = 1e5))
out <- list(versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                            lmerTest = as.character(packageVersion("lmerTest")),
                            pbkrtest = as.character(packageVersion("pbkrtest"))))
for (m in c("eff_leadership", "eff_voice")) {
  d <- panel[panel$measure == m, ]
  d$wave <- factor(d$wave, levels = waves)
  d$status <- factor(d$status)
  fit <- lmer(value ~ wave * status + (1 | council_code) + (1 | council_code:wave) + (1 | council_code:respondent_id),
              data = d, REML = TRUE, control = ctrl)
  sat <- anova(fit, type = 3, ddf = "Satterthwaite")
  kr_lmertest <- anova(fit, type = 3, ddf = "Kenward-Roger")
  names_b <- names(fixef(fit))
  L <- diag(length(names_b))[grepl(":", names_b), , drop = FALSE]
  kr <- KRmodcomp(fit, L)$stats
  out[[m]] <- list(
    terms = names_b,
    satterthwaite = list(F = sat["wave:status", "F value"], num_df = sat["wave:status", "NumDF"],
                         den_df = sat["wave:status", "DenDF"], p_value = sat["wave:status", "Pr(>F)"]),
    kenward_roger = list(F = kr$Fstat, num_df = kr$ndf, den_df = kr$ddf, p_value = kr$p.value,
                         F_scaling = kr$F.scaling, F_unscaled = kr$FstatU),
    kenward_roger_lmertest = list(F = kr_lmertest["wave:status", "F value"], den_df = kr_lmertest["wave:status", "DenDF"]))
}
write_json(out, file.path(here, "joint_test_reference.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)

# Reference values from R (lme4 + lmerTest) for impactstudy.model.stats.lmm.
#
# Fits REML random-intercept models with lme4 and Satterthwaite t-tests with lmerTest, and writes
#   fixtures/lmm_<name>.csv   the data (so Python fits exactly the same rows)
#   fixtures/lmm_<name>.json  estimates, SEs, vcov, variance components, REML criterion, theta,
#                             Satterthwaite df and p per coefficient and for named contrasts
# Datasets: lme4's sleepstudy (Reaction ~ Days + (1 | Subject)); a simulated unbalanced panel of
# respondents nested in councils over three waves (value ~ wave and value ~ wave * status, both with
# (1 | council_code) + (1 | council_code:respondent_id)); and a panel whose council means are equal by
# construction, so the council variance is estimated at the boundary (singular fit); and, for the
# council x wave model (value ~ wave [* status] + (1 | council_code) + (1 | council_code:wave)
# [+ (1 | council_code:respondent_id)]), an unbalanced panel where councils change by different
# amounts, cross-sections (no recurring respondents), a boundary fit (council x wave variance 0) and
# six councils. Kenward-Roger results come from pbkrtest::vcovAdj and
# lmerTest::contest1D(ddf = "Kenward-Roger").
# tests/model/test_lmm.py reads the fixtures; it never needs R.
#
# Regenerate from the repository root with:  Rscript tests/reference/lmm_reference.R
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(jsonlite)
})

here <- "tests/reference/fixtures"
dir.create(here, showWarnings = FALSE, recursive = TRUE)
# bobyqa with a tight final trust radius, so the reference is the optimum itself. lme4's default
# (nloptwrap) stops early on the boundary data set: theta = (0.363, 0), REML 330.19, where bobyqa
# reaches theta = (0.454, 0), REML 329.95.
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-10, maxfun = 1e5))

kr_test <- function(m, L) {
  ct <- contest1D(m, L, ddf = "Kenward-Roger", confint = TRUE)
  list(estimate = ct$Estimate, se = ct$`Std. Error`, df = ct$df, t = ct$`t value`, p = ct$`Pr(>|t|)`,
       lower = ct$lower, upper = ct$upper)
}

describe <- function(m, contrasts = list()) {
  vc <- as.data.frame(VarCorr(m))
  vc <- vc[is.na(vc$var2), ]
  co <- summary(m)$coefficients
  kr_coef <- lapply(seq_along(fixef(m)), function(j) kr_test(m, as.numeric(seq_along(fixef(m)) == j)))
  out <- list(
    formula = deparse(formula(m)),
    terms = rownames(co),
    beta = unname(fixef(m)),
    se = unname(co[, "Std. Error"]),
    df = unname(co[, "df"]),
    t = unname(co[, "t value"]),
    p = unname(co[, "Pr(>|t|)"]),
    vcov = unname(as.matrix(vcov(m))),
    varcomp = setNames(as.list(vc$vcov), vc$grp),
    theta = unname(getME(m, "theta")),
    sigma = sigma(m),
    reml_criterion = unname(REMLcrit(m)),
    n_obs = nobs(m),
    n_groups = as.list(ngrps(m)),
    singular = isSingular(m),
    # pbkrtest's Kenward-Roger adjusted vcov, and lmerTest's contest1D(ddf = "Kenward-Roger") per coefficient
    kr_vcov = unname(as.matrix(pbkrtest::vcovAdj(m))),
    kr_se = vapply(kr_coef, function(k) k$se, numeric(1)),
    kr_df = vapply(kr_coef, function(k) k$df, numeric(1)),
    kr_p = vapply(kr_coef, function(k) k$p, numeric(1)),
    contrasts = list()
  )
  for (nm in names(contrasts)) {
    L <- contrasts[[nm]]
    ct <- contest1D(m, L, confint = TRUE)
    out$contrasts[[nm]] <- list(L = L, estimate = ct$Estimate, se = ct$`Std. Error`, df = ct$df,
                                t = ct$`t value`, p = ct$`Pr(>|t|)`, lower = ct$lower, upper = ct$upper,
                                kr = kr_test(m, L))
  }
  out
}

save <- function(name, data, fits) {
  write.csv(data, file.path(here, sprintf("lmm_%s.csv", name)), row.names = FALSE)
  writeLines(toJSON(fits, digits = NA, auto_unbox = TRUE, pretty = TRUE),
             file.path(here, sprintf("lmm_%s.json", name)))
}

# ---- (1) sleepstudy, random intercept only ----------------------------------------------------
data(sleepstudy, package = "lme4")
ss <- data.frame(Reaction = sleepstudy$Reaction, Days = sleepstudy$Days,
                 Subject = as.character(sleepstudy$Subject))
m_ss <- lmer(Reaction ~ Days + (1 | Subject), data = ss, REML = TRUE, control = ctrl)
save("sleepstudy", ss, list(intercept = describe(m_ss)))

# ---- (2) nested panel: respondents within councils, three waves, unbalanced --------------------
simulate_panel <- function(n_councils, council_sd) {
  rows <- list()
  for (i in seq_len(n_councils)) {
    code <- sprintf("E%08d", 10000000 + i)
    status <- if (i %% 3 == 0) "B" else "A"
    u_c <- rnorm(1, 0, council_sd)
    n_resp <- sample(1:6, 1)
    for (r in seq_len(n_resp)) {
      u_r <- rnorm(1, 0, 0.7)
      for (w in 1:3) {
        if (runif(1) < 0.2) next                            # respondent missed this wave
        shift <- c(0, 0.3, 0.5)[w] + if (status == "B") c(0, 0.4, 0.2)[w] else 0
        rows[[length(rows) + 1]] <- data.frame(
          council_code = code, respondent_id = sprintf("R%d", r), wave = sprintf("w%d", w),
          status = status, value = 3 + u_c + u_r + shift + rnorm(1, 0, 1))
      }
    }
  }
  do.call(rbind, rows)
}

set.seed(20251126)
nested <- simulate_panel(24, council_sd = 0.6)
fit_data <- transform(nested, wave = factor(wave, levels = c("w1", "w2", "w3")),
                      status = factor(status, levels = c("A", "B")))
m_wave <- lmer(value ~ wave + (1 | council_code) + (1 | council_code:respondent_id),
               data = fit_data, REML = TRUE, control = ctrl)
m_group <- lmer(value ~ wave * status + (1 | council_code) + (1 | council_code:respondent_id),
                data = fit_data, REML = TRUE, control = ctrl)
# Columns of m_group: (Intercept) wavew2 wavew3 statusB wavew2:statusB wavew3:statusB
save("nested", nested, list(
  wave = describe(m_wave, list(`w3 - w2` = c(0, -1, 1))),
  wave_status = describe(m_group, list(
    `status=A: w2 - w1` = c(0, 1, 0, 0, 0, 0),
    `status=A: w3 - w2` = c(0, -1, 1, 0, 0, 0),
    `status=B: w3 - w1` = c(0, 0, 1, 0, 0, 1),
    `status=B: w3 - w2` = c(0, -1, 1, 0, -1, 1)))
))

# ---- (3) boundary: equal council means, so the council variance is estimated as 0 --------------
set.seed(1)    # a seed where only the council variance is on the boundary
flat <- simulate_panel(15, council_sd = 0)
flat$value <- flat$value - ave(flat$value, flat$council_code)   # every council has mean 0
flat_data <- transform(flat, wave = factor(wave, levels = c("w1", "w2", "w3")))
m_flat <- lmer(value ~ wave + (1 | council_code) + (1 | council_code:respondent_id),
               data = flat_data, REML = TRUE, control = ctrl)
m_flat1 <- lmer(value ~ wave + (1 | council_code), data = flat_data, REML = TRUE, control = ctrl)
save("boundary", flat, list(
  nested = describe(m_flat, list(`w3 - w2` = c(0, -1, 1))),
  council = describe(m_flat1, list(`w3 - w2` = c(0, -1, 1)))
))
# ---- (4) council x wave: councils change by different amounts (tau), respondents recur ----------
# value ~ wave [* status] + (1 | council_code) + (1 | council_code:wave) + (1 | council_code:respondent_id)
# Unbalanced: 1-9 respondents per council, some councils missing a whole wave, respondents missing waves.
simulate_change <- function(n_councils, council_sd, tau, resp_sd = 0.7, max_resp = 9, drop_wave = 0.15,
                            recur = TRUE) {
  rows <- list()
  for (i in seq_len(n_councils)) {
    code <- sprintf("E%08d", 10000000 + i)
    status <- if (i %% 3 == 0) "B" else "A"
    u_c <- rnorm(1, 0, council_sd)
    u_cw <- rnorm(3, 0, tau)                                # the council's own change at each wave
    present <- runif(3) >= drop_wave
    if (sum(present) < 2) present[] <- TRUE
    n_resp <- sample(1:max_resp, 1)
    for (r in seq_len(n_resp)) {
      u_r <- rnorm(1, 0, resp_sd)
      for (w in which(present)) {
        if (runif(1) < 0.2) next
        shift <- c(0, 0.3, 0.5)[w] + if (status == "B") c(0, 0.4, 0.2)[w] else 0
        rid <- if (recur) sprintf("R%d", r) else sprintf("R%d-%d", r, w)
        rows[[length(rows) + 1]] <- data.frame(
          council_code = code, respondent_id = rid, wave = sprintf("w%d", w),
          status = status, value = 3 + u_c + u_cw[w] + u_r + shift + rnorm(1, 0, 1))
      }
    }
  }
  do.call(rbind, rows)
}
as_factors <- function(d) transform(d, wave = factor(wave, levels = c("w1", "w2", "w3")),
                                    status = factor(status, levels = c("A", "B")))
cw_formula <- value ~ wave + (1 | council_code) + (1 | council_code:wave) + (1 | council_code:respondent_id)
cw_group <- value ~ wave * status + (1 | council_code) + (1 | council_code:wave) + (1 | council_code:respondent_id)
group_contrasts <- list(
  `status=A: w2 - w1` = c(0, 1, 0, 0, 0, 0),
  `status=A: w3 - w2` = c(0, -1, 1, 0, 0, 0),
  `status=B: w3 - w1` = c(0, 0, 1, 0, 0, 1),
  `status=B: w3 - w2` = c(0, -1, 1, 0, -1, 1))

set.seed(20261201)
cw <- simulate_change(30, council_sd = 0.5, tau = 0.35)
cw_data <- as_factors(cw)
save("council_wave", cw, list(
  wave = describe(lmer(cw_formula, data = cw_data, REML = TRUE, control = ctrl),
                  list(`w3 - w1` = c(0, 0, 1), `w3 - w2` = c(0, -1, 1))),
  wave_status = describe(lmer(cw_group, data = cw_data, REML = TRUE, control = ctrl), group_contrasts),
  # the same rows without the council x wave term: the nested model as a special case
  nested = describe(lmer(value ~ wave + (1 | council_code) + (1 | council_code:respondent_id), data = cw_data,
                         REML = TRUE, control = ctrl), list(`w3 - w1` = c(0, 0, 1))),
  # the model stage's w3 - w1 row: the same model fitted to waves w1 and w3 only
  pair_w3_w1 = describe(lmer(cw_formula, data = transform(cw_data[cw_data$wave != "w2", ],
                                                          wave = factor(wave, levels = c("w1", "w3"))),
                             REML = TRUE, control = ctrl), list(`w3 - w1` = c(0, 1)))
))

# ---- (5) council x wave, respondents answer once (cross-sections): no respondent term --------------
set.seed(7)
cs <- simulate_change(12, council_sd = 0.4, tau = 0.3, max_resp = 12, recur = FALSE)
cs_data <- as_factors(cs)
save("council_wave_cross", cs, list(
  wave = describe(lmer(value ~ wave + (1 | council_code) + (1 | council_code:wave), data = cs_data,
                       REML = TRUE, control = ctrl), list(`w3 - w1` = c(0, 0, 1), `w3 - w2` = c(0, -1, 1)))
))

# ---- (6) council x wave on the boundary: no council-level change (tau = 0), estimated as exactly 0 ----
# The first seed from 1 where lme4 puts only the council x wave variance at 0.
for (seed in 1:200) {
  set.seed(seed)
  bw <- simulate_change(10, council_sd = 0.5, tau = 0, max_resp = 6)
  m_bw <- lmer(cw_formula, data = as_factors(bw), REML = TRUE, control = ctrl)
  vc <- as.data.frame(VarCorr(m_bw))
  if (vc$vcov[vc$grp == "council_code:wave"] == 0 && all(vc$vcov[vc$grp != "council_code:wave"] > 0)) break
}
save("council_wave_boundary", bw, list(
  seed = seed,
  wave = describe(m_bw, list(`w3 - w1` = c(0, 0, 1), `w3 - w2` = c(0, -1, 1)))
))

# ---- (7) six councils, 1-4 respondents each (the original study's size) ------------------------
set.seed(6)
six <- simulate_change(6, council_sd = 0.4, tau = 0.3, max_resp = 4, drop_wave = 0)
six_data <- as_factors(six)
save("council_wave_six", six, list(
  wave = describe(lmer(cw_formula, data = six_data, REML = TRUE, control = ctrl),
                  list(`w3 - w1` = c(0, 0, 1), `w2 - w1` = c(0, 1, 0), `w3 - w2` = c(0, -1, 1)))
))
cat("wrote", file.path(here, "lmm_*.{csv,json}"), "\n")

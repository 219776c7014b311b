# Reference values from R for the model stage on the demo panel.
#
# Reads fixtures/demo_panel.csv (the 40-council demo's linked panel for eff_leadership and eff_voice,
# Likert 1-5, and improvement_plan, 0/1; written by demo_panel_export.py) and fits every model the
# pipeline fits to those measures, overall and within each level of the council covariate `status`:
#
#   lmm       lmer(value ~ wave [* status] + (1 | council_code) + (1 | council_code:wave) +
#             (1 | council_code:respondent_id)), REML; lmerTest::contest1D (Kenward-Roger SE and df, via pbkrtest) for each
#             contrast (the council:wave term only while there are fewer council x wave cells than rows,
#             as in the pipeline). Each contrast's row comes from the model fitted to its two waves only
#             (the respondent term where respondents recur in them), as the pipeline; lmm_fits are the
#             all-wave fits
#   gee       geeglm(value ~ wave [* status], id = council, corstr = "exchangeable", std.err = "san.se"),
#             normal reference. The pipeline uses Mancl-DeRouen bias-reduced SEs with a t reference only
#             below [models] few_councils (20 in the demo); the demo panel has 40 councils, so plain
#             san.se is the convention to match. Also fitted to the 0/1 improvement_plan (Gaussian).
#   ordinal   per contrast and status level, councils with answers at both waves, each answer weighted
#             1/n (its council's answers at its wave): clm(ordered(value) ~ later, weights = 1/n) with
#             sandwich::vcovCL(cluster = council, type = "HC1"), t reference on G - 1 df below 40 councils
#             at both waves (ordinal_contrast.R, shared with ordinal_reference.R)
#   paired_t  t.test(later, earlier, paired = TRUE) on council means of councils seen at both waves
#   wilcoxon  wilcox.test(later, earlier, paired = TRUE, conf.int = TRUE, digits.rank = 12) on the same
#             council means (exact when n < 50 without ties, else normal with continuity correction).
#             digits.rank = 12 because impactstudy ranks differences rounded to 12 significant digits:
#             council means such as 2/3 - 0 and 1/3 - 1 are ties in exact arithmetic but not always in
#             floating point, and with R's default (digits.rank = Inf) the tie correction, so the
#             p-value, then depends on rounding noise. p_value_digits_rank_inf records R's default.
#   mcnemar   binom.test(n10, n10 + n01) on respondents answering improvement_plan at both waves;
#             estimate (n01 - n10) / n and the CI that inverts the same exact test: binom.test(n01, d)$conf.int
#             (Clopper-Pearson for theta = n01 / d, d = n01 + n10) mapped to d / n * (2 theta - 1)
#
# Contrasts: every wave minus baseline, and follow_up - early_impact; within a status level the
# contrast vector is the model-matrix row of (later wave, level) minus that of (earlier wave, level).
# Writes fixtures/demo_panel_reference.json: `rows` shaped like tables/contrasts.csv, and `lmm_fits`
# with fixed effects, SEs and variance components. tests/model/test_models_vs_r.py reads both files.
#
# Regenerate from the repository root with:  Rscript tests/reference/demo_panel_reference.R
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(geepack)
  library(ordinal)
  library(sandwich)
  library(jsonlite)
})

source("tests/reference/ordinal_contrast.R")
here <- "tests/reference/fixtures"
waves <- c("baseline", "early_impact", "follow_up")
panel <- read.csv(file.path(here, "demo_panel.csv"), stringsAsFactors = FALSE,
                  colClasses = c(value = "numeric"))
panel <- panel[order(panel$council_code), ]                  # geepack needs each cluster contiguous
statuses <- sort(unique(panel$status))
z <- qnorm(0.975)
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-10, maxfun = 1e5))

measure_data <- function(measure) {
  d <- panel[panel$measure == measure, ]
  present <- waves[waves %in% d$wave]
  d$wave <- factor(d$wave, levels = present)
  d$status <- factor(d$status, levels = statuses)
  d$cid <- as.integer(factor(d$council_code))
  d
}

pairs_for <- function(present) {
  p <- lapply(present[-1], function(w) c(w, present[1]))
  if (length(present) >= 3) for (k in 3:length(present)) p[[length(p) + 1]] <- present[c(k, k - 1)]
  p
}

# Contrast vectors L (named "<later> - <earlier>" and group label) for a fit with coefficient names `cn`.
contrast_vectors <- function(d, by_status, cn) {
  grid <- expand.grid(wave = levels(d$wave), status = levels(d$status), stringsAsFactors = FALSE)
  grid$wave <- factor(grid$wave, levels = levels(d$wave))
  grid$status <- factor(grid$status, levels = levels(d$status))
  X <- model.matrix(if (by_status) ~ wave * status else ~ wave, grid)
  stopifnot(identical(colnames(X), cn))
  out <- list()
  for (s in if (by_status) levels(d$status) else NA) {
    for (p in pairs_for(levels(d$wave))) {
      row <- function(w) X[which(grid$wave == w & (is.na(s) | grid$status == s))[1], ]
      out[[length(out) + 1]] <- list(contrast = paste(p[1], "-", p[2]), waves = p,
                                     group = if (is.na(s)) "all" else paste0("status=", s),
                                     level = s, L = unname(row(p[1]) - row(p[2])))
    }
  }
  out
}

cell_counts <- function(d, ct) {
  used <- d[d$wave %in% ct$waves & (is.na(ct$level) | d$status == ct$level), ]
  list(n_obs = nrow(used), n_councils = length(unique(used$council_code)))
}

wald_row <- function(measure, model, d, ct, beta, V) {
  est <- sum(ct$L * beta); se <- sqrt(drop(t(ct$L) %*% V %*% ct$L))
  c(list(measure = measure, model = model, contrast = ct$contrast, group = ct$group, estimate = est,
         std_error = se, ci_low = est - z * se, ci_high = est + z * se,
         p_value = 2 * pnorm(-abs(est / se)), df = NA), cell_counts(d, ct))
}

rows <- list()
lmm_fits <- list()
add <- function(r) rows[[length(rows) + 1]] <<- r

for (measure in c("eff_leadership", "eff_voice", "improvement_plan")) {
  d <- measure_data(measure)
  for (by_status in c(FALSE, TRUE)) {
    rhs <- if (by_status) "wave * status" else "wave"
    if (measure != "improvement_plan") {
      # ---- LMM with Kenward-Roger contrasts (the stage's default [models] lmm_df) -------------------
      cw <- if (nlevels(interaction(d$council_code, d$wave, drop = TRUE)) < nrow(d)) "+ (1 | council_code:wave)" else ""
      m <- lmer(as.formula(paste("value ~", rhs, "+ (1 | council_code)", cw, "+ (1 | council_code:respondent_id)")),
                data = d, REML = TRUE, control = ctrl)
      vc <- as.data.frame(VarCorr(m))
      co <- summary(m, ddf = "Kenward-Roger")$coefficients
      lmm_fits[[length(lmm_fits) + 1]] <- list(
        measure = measure, group_by = if (by_status) "status" else "", terms = rownames(co),
        beta = unname(fixef(m)), se = unname(co[, "Std. Error"]), df = unname(co[, "df"]),
        formula = paste(trimws(deparse(formula(m))), collapse = " "),
        var_council = vc$vcov[vc$grp == "council_code"],
        var_council_wave = if (cw == "") NA else vc$vcov[vc$grp == "council_code:wave"],
        var_respondent = vc$vcov[vc$grp == "council_code:respondent_id"],
        var_residual = vc$vcov[vc$grp == "Residual"], reml_criterion = unname(REMLcrit(m)),
        n_obs = nobs(m), singular = isSingular(m))
      # each contrast from the same model fitted to its two waves only (with more than two waves)
      for (ct in contrast_vectors(d, by_status, names(fixef(m)))) {
        mc <- m
        if (nlevels(d$wave) > 2) {
          d2 <- d[d$wave %in% ct$waves, ]
          d2$wave <- factor(as.character(d2$wave), levels = levels(d$wave)[levels(d$wave) %in% ct$waves])
          cw2 <- if (nlevels(interaction(d2$council_code, d2$wave, drop = TRUE)) < nrow(d2)) "+ (1 | council_code:wave)" else ""
          rt <- if (any(duplicated(paste(d2$council_code, d2$respondent_id)))) "+ (1 | council_code:respondent_id)" else ""
          mc <- lmer(as.formula(paste("value ~", rhs, "+ (1 | council_code)", cw2, rt)), data = d2, REML = TRUE,
                     control = ctrl)
          ct2 <- Filter(function(x) x$contrast == ct$contrast && x$group == ct$group,
                        contrast_vectors(d2, by_status, names(fixef(mc))))[[1]]
          ct$L <- ct2$L
        }
        r <- contest1D(mc, ct$L, confint = TRUE, ddf = "Kenward-Roger")
        add(c(list(measure = measure, model = "lmm", contrast = ct$contrast, group = ct$group,
                   estimate = r$Estimate, std_error = r$`Std. Error`, ci_low = r$lower, ci_high = r$upper,
                   p_value = r$`Pr(>|t|)`, df = r$df), cell_counts(d, ct)))
      }
      # ---- proportional-odds logit per contrast and level: councils at both waves, weighted 1/n ----
      for (ct in contrast_vectors(d, by_status, names(fixef(m)))) {
        r <- ordinal_contrast(d[is.na(ct$level) | d$status == ct$level, ], ct$waves[1], ct$waves[2])
        na <- !isTRUE(r$estimable)
        add(list(measure = measure, model = "ordinal", contrast = ct$contrast, group = ct$group,
                 estimate = if (na) NA else r$estimate, std_error = if (na) NA else r$std_error,
                 ci_low = if (na) NA else r$ci_low, ci_high = if (na) NA else r$ci_high,
                 p_value = if (na) NA else r$p_value, df = if (na) NA else r$df,
                 n_obs = r$n_obs, n_councils = r$g))
      }
    }
    # ---- GEE, exchangeable within council, san.se ----------------------------------------------
    g <- geeglm(as.formula(paste("value ~", rhs)), id = cid, data = d, family = gaussian,
                corstr = "exchangeable", std.err = "san.se",
                control = geese.control(epsilon = 1e-10, maxit = 200))
    for (ct in contrast_vectors(d, by_status, names(coef(g)))) add(wald_row(measure, "gee", d, ct, coef(g), vcov(g)))
  }
}

# ---- paired tests on council means -------------------------------------------------------------
for (measure in c("eff_leadership", "eff_voice")) {
  d <- measure_data(measure)
  means <- aggregate(value ~ council_code + status + wave, data = d, FUN = mean)
  for (s in c(NA, statuses)) {
    sub <- if (is.na(s)) means else means[means$status == s, ]
    for (p in pairs_for(waves)) {
      a <- sub[sub$wave == p[1], c("council_code", "value")]
      b <- sub[sub$wave == p[2], c("council_code", "value")]
      ab <- merge(a, b, by = "council_code", suffixes = c(".later", ".earlier"))
      base <- list(measure = measure, contrast = paste(p[1], "-", p[2]),
                   group = if (is.na(s)) "all" else paste0("status=", s), n_councils = nrow(ab))
      tt <- t.test(ab$value.later, ab$value.earlier, paired = TRUE)
      add(c(base, list(model = "paired_t", estimate = unname(tt$estimate), std_error = tt$stderr,
                       ci_low = tt$conf.int[1], ci_high = tt$conf.int[2], p_value = tt$p.value,
                       df = unname(tt$parameter))))
      wilcox <- function(digits) suppressWarnings(wilcox.test(ab$value.later, ab$value.earlier, paired = TRUE,
                                                              conf.int = TRUE, digits.rank = digits))
      wt <- wilcox(12)
      add(c(base, list(model = "wilcoxon", estimate = unname(wt$estimate), ci_low = wt$conf.int[1],
                       ci_high = wt$conf.int[2], p_value = wt$p.value, exact = grepl("exact", wt$method),
                       conf_level = attr(wt$conf.int, "conf.level"), p_value_digits_rank_inf = wilcox(Inf)$p.value)))
    }
  }
}

# ---- McNemar on respondents answering improvement_plan at both waves ----------------------------
d <- measure_data("improvement_plan")
for (s in c(NA, statuses)) {
  sub <- if (is.na(s)) d else d[d$status == s, ]
  b0 <- sub[sub$wave == "baseline", c("council_code", "respondent_id", "value")]
  b1 <- sub[sub$wave == "follow_up", c("council_code", "respondent_id", "value")]
  bb <- merge(b0, b1, by = c("council_code", "respondent_id"), suffixes = c(".earlier", ".later"))
  tab <- table(factor(bb$value.earlier, levels = 1:0), factor(bb$value.later, levels = 1:0))
  n10 <- tab[1, 2]; n01 <- tab[2, 1]
  d_pairs <- n10 + n01
  ci <- if (d_pairs > 0) d_pairs / nrow(bb) * (2 * binom.test(n01, d_pairs, 0.5)$conf.int - 1) else c(0, 0)
  add(list(measure = "improvement_plan", model = "mcnemar", contrast = "follow_up - baseline",
           group = if (is.na(s)) "all" else paste0("status=", s), estimate = (n01 - n10) / nrow(bb),
           ci_low = ci[1], ci_high = ci[2],
           p_value = if (n10 + n01 > 0) binom.test(n10, n10 + n01, 0.5)$p.value else 1,
           n_obs = nrow(bb), n_councils = length(unique(bb$council_code)), table = unname(matrix(as.integer(tab), 2))))
}

versions <- sapply(c("lme4", "lmerTest", "geepack", "ordinal", "sandwich"), function(p) as.character(packageVersion(p)))
writeLines(toJSON(list(r_version = R.version.string, packages = as.list(versions), rows = rows, lmm_fits = lmm_fits),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           file.path(here, "demo_panel_reference.json"))
cat("wrote", file.path(here, "demo_panel_reference.json"), "with", length(rows), "rows\n")

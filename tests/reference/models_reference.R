# Reference values from R for impactstudy.model.stats (GEE, paired tests, McNemar; the ordinal model's are
# ordinal_reference.R's, on this script's panel too).
#
# Builds a deterministic demo-like panel (30 councils, 1-4 respondents each who recur across three
# waves with some missed waves, a Likert 1-5 value, a binary item and a two-level council 'status'),
# writes it to fixtures/models_data.csv, fits the reference models and writes fixtures/models_reference.json.
# tests/model/test_models_stats.py reads both files; it never needs R.
#
# Regenerate from the repository root with:  Rscript tests/reference/models_reference.R
suppressPackageStartupMessages({
  library(geepack)
  library(jsonlite)
})

here <- "tests/reference/fixtures"
dir.create(here, showWarnings = FALSE, recursive = TRUE)
waves <- c("baseline", "early_impact", "follow_up")

# ---- data -------------------------------------------------------------------------------------
set.seed(20240501)
n_councils <- 30
rows <- list()
for (i in seq_len(n_councils)) {
  code <- sprintf("E%08d", 6000000 + i)
  status <- if (i %% 3 == 0) "Notice to Improve" else "Intervention"
  council_effect <- rnorm(1, 0, 0.6)
  n_resp <- sample(1:4, 1)
  for (r in seq_len(n_resp)) {
    resp_effect <- rnorm(1, 0, 0.4)
    for (w in seq_along(waves)) {
      if (runif(1) < 0.12) next                        # this respondent missed this wave
      shift <- c(0, 0.35, 0.7)[w] + if (status == "Notice to Improve") c(0, 0.2, 0.4)[w] else 0
      latent <- 2.8 + council_effect + resp_effect + shift + rnorm(1, 0, 0.8)
      value <- min(5, max(1, round(latent)))
      if (runif(1) < 0.05) value <- NA                   # item non-response
      binary <- as.integer(runif(1) < plogis(-0.3 + 0.5 * (w - 1) + council_effect))
      rows[[length(rows) + 1]] <- data.frame(
        council_code = code, respondent_id = sprintf("R%02d-%d", i, r), wave = waves[w],
        status = status, value = value, binary = binary, stringsAsFactors = FALSE)
    }
  }
}
d <- do.call(rbind, rows)
write.csv(d, file.path(here, "models_data.csv"), row.names = FALSE, na = "")

d$wave <- factor(d$wave, levels = waves)
d$status <- factor(d$status, levels = c("Intervention", "Notice to Improve"))
d <- d[order(d$council_code), ]                         # geepack needs each cluster contiguous

out <- list(waves = waves)

# ---- GEE (geepack, exchangeable within council, sandwich 'san.se') ----------------------------
gee_fit <- function(formula) {
  dd <- d[!is.na(d$value), ]
  dd$cid <- as.integer(factor(dd$council_code))
  fit <- geeglm(formula, id = cid, data = dd, corstr = "exchangeable", family = gaussian,
                std.err = "san.se", control = geese.control(epsilon = 1e-10, maxit = 200))
  list(coef = as.list(coef(fit)), se = as.list(sqrt(diag(vcov(fit)))),
       vcov = unname(vcov(fit)), names = names(coef(fit)),
       alpha = unname(fit$geese$alpha), phi = unname(fit$geese$gamma))
}
out$gee_all <- gee_fit(value ~ wave)
out$gee_status <- gee_fit(value ~ wave * status)

# ---- paired tests on council means -------------------------------------------------------------
means <- aggregate(value ~ council_code + wave, data = d, FUN = mean)   # drops NA values
wide <- reshape(means, idvar = "council_code", timevar = "wave", direction = "wide")
wide <- wide[order(wide$council_code), ]

paired <- function(later_wave, earlier_wave, no_ties) {
  later_all <- wide[[paste0("value.", later_wave)]]
  earlier_all <- wide[[paste0("value.", earlier_wave)]]
  ok <- !is.na(later_all) & !is.na(earlier_all)
  councils <- wide$council_code[ok]
  if (no_ties) {
    # Councils in code order whose |difference| is new and non-zero, so the exact test applies.
    diffs <- later_all[ok] - earlier_all[ok]
    keep <- character(0); seen <- numeric(0)
    for (k in seq_along(diffs)) {
      a <- abs(diffs[k])
      if (a > 1e-9 && !any(abs(seen - a) < 1e-9) && length(keep) < 12) {
        keep <- c(keep, councils[k]); seen <- c(seen, a)
      }
    }
    councils <- keep
  }
  sel <- match(councils, wide$council_code)
  later <- later_all[sel]; earlier <- earlier_all[sel]
  tt <- t.test(later, earlier, paired = TRUE)
  wt <- suppressWarnings(wilcox.test(later, earlier, paired = TRUE, conf.int = TRUE,
                                     exact = TRUE))
  stopifnot(grepl("exact", wt$method) == no_ties)
  list(later = later_wave, earlier = earlier_wave, councils = councils,
       t = list(estimate = unname(tt$estimate), ci = unname(as.numeric(tt$conf.int)),
                p = tt$p.value, statistic = unname(tt$statistic), df = unname(tt$parameter),
                se = unname(tt$stderr)),
       wilcoxon = list(estimate = unname(wt$estimate), ci = unname(as.numeric(wt$conf.int)),
                       p = wt$p.value, statistic = unname(wt$statistic), method = wt$method,
                       conf_level = attr(wt$conf.int, "conf.level")))
}
out$paired <- list(
  paired(later_wave = "follow_up", earlier_wave = "baseline", no_ties = TRUE),
  paired(later_wave = "follow_up", earlier_wave = "early_impact", no_ties = TRUE),
  paired(later_wave = "follow_up", earlier_wave = "baseline", no_ties = FALSE),
  paired(later_wave = "early_impact", earlier_wave = "baseline", no_ties = FALSE))

# ---- McNemar on respondents answering the binary item at both waves ---------------------------
b0 <- d[d$wave == "baseline", c("respondent_id", "binary")]
b1 <- d[d$wave == "follow_up", c("respondent_id", "binary")]
bb <- merge(b0, b1, by = "respondent_id", suffixes = c(".earlier", ".later"))
tab <- table(factor(bb$binary.earlier, levels = 1:0), factor(bb$binary.later, levels = 1:0))
n10 <- tab[1, 2]; n01 <- tab[2, 1]
out$mcnemar <- list(
  table = unname(matrix(as.integer(tab), 2)),   # column-major: [n11, n01, n10, n00]
  n_pairs = nrow(bb),
  p_exact = binom.test(n10, n10 + n01, 0.5)$p.value,
  p_chisq = mcnemar.test(tab, correct = FALSE)$p.value,
  diff = (n01 - n10) / nrow(bb))

# ---- Wilson interval for "expected it and achieved it" ----------------------------------------
# Expected = binary at baseline, achieved = binary at follow-up, same respondent.
ex <- bb[bb$binary.earlier == 1, ]
pt <- prop.test(sum(ex$binary.later), nrow(ex), correct = FALSE)
out$expectation <- list(n_expected = nrow(ex), n_met = sum(ex$binary.later),
                        share = unname(pt$estimate), ci = as.numeric(pt$conf.int))

# ---- Newcombe (1998) method 10 CI for a paired difference, transcribed from the published formula
# (Fagerland, Lydersen & Laake 2017, ch. 8). Table rows = first measurement (1, 0), columns = second;
# the difference is second - first, i.e. later - earlier.
newcombe <- function(tab) {
  n <- sum(tab); p_first <- sum(tab[1, ]) / n; p_second <- sum(tab[, 1]) / n
  w_first <- prop.test(sum(tab[1, ]), n, correct = FALSE)$conf.int
  w_second <- prop.test(sum(tab[, 1]), n, correct = FALSE)$conf.int
  a <- tab[1, 1] * tab[2, 2] - tab[1, 2] * tab[2, 1]
  margins <- prod(rowSums(tab)) * prod(colSums(tab))
  psi <- if (margins == 0 || (a >= 0 && a <= n / 2)) 0 else if (a > n / 2) (a - n / 2) / sqrt(margins) else a / sqrt(margins)
  est <- p_second - p_first
  lower <- est - sqrt((p_second - w_second[1])^2 + (w_first[2] - p_first)^2 -
                        2 * psi * (p_second - w_second[1]) * (w_first[2] - p_first))
  upper <- est + sqrt((p_first - w_first[1])^2 + (w_second[2] - p_second)^2 -
                        2 * psi * (p_first - w_first[1]) * (w_second[2] - p_second))
  list(table = unname(tab), estimate = est, ci = c(lower, upper),
       p_exact = binom.test(tab[1, 2], tab[1, 2] + tab[2, 1], 0.5)$p.value)
}
out$newcombe <- list(
  newcombe(matrix(as.integer(tab), 2)),
  newcombe(rbind(c(1, 1), c(7, 12))),      # Bentur et al. 2009 (Fagerland et al. ch. 8)
  newcombe(rbind(c(59, 6), c(16, 80))),    # Cavo et al. 2012 (ibid.)
  newcombe(rbind(c(36, 12), c(2, 0))),     # negative cross-product
  newcombe(rbind(c(3, 0), c(4, 5))))       # one discordant cell empty

# ---- Wilcoxon signed-rank on hand-made differences: small n, negative shifts, ties, zeros --------
wvec <- function(x) {
  wt <- suppressWarnings(wilcox.test(x, conf.int = TRUE))
  list(x = x, estimate = unname(wt$estimate), ci = as.numeric(wt$conf.int), p = wt$p.value,
       conf_level = attr(wt$conf.int, "conf.level"), exact = grepl("exact", wt$method))
}
out$wilcoxon_vectors <- list(
  wvec(c(-1.3, 0.4, 2.2, -0.7, 1.9, 3.1, -2.6, 0.9)),
  wvec(c(0.5, -0.25, 1.75, 2.5)),                       # n = 4: 95% not achievable
  wvec(c(0.12, -0.31, 0.44, 0.05, -0.77, 0.61, 0.93, -0.18, 0.27, 1.4, -0.09, 0.36, 0.52, 0.71, -0.46,
         0.88, 1.02, -0.6, 0.15, 0.33)),
  wvec(c(1, -1, 2, 0.5, 0.5, -2, 3, 1.5, 0)),          # ties and a zero
  wvec(round(seq(-1, 4, length.out = 60)^2 / 3 - 1, 3)))   # n >= 50: normal approximation

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path(here, "models_reference.json"))
cat("wrote", file.path(here, "models_data.csv"), "and models_reference.json\n")

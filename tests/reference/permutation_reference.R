# Reference values from R for the exact council-level tests of impactstudy.model.stats.permutation and the
# exact conditional Wilcoxon test of impactstudy.model.stats.paired:
#
# - sign-flip test of council changes: p by enumerating all 2^n sign patterns, Hartigan's subset-mean
#   interval by enumerating all 2^n - 1 non-empty subsets, at the level rule of docs/models.md;
# - Wilcoxon signed-rank with ties or zeros: p from coin's exact conditional distribution
#   (wilcoxsign_test(distribution = "exact", zero.method = "Wilcoxon")) and, for small n, by enumerating
#   sign patterns with R's own mid-ranks; the Hodges-Lehmann estimate (median of the Walsh averages);
#   the interval that inverts the test, scanning Walsh averages and the points between them from the
#   outside in with coin's p-value;
# - the same Wilcoxon numbers for the council means of fixtures/models_data.csv and
#   fixtures/demo_panel.csv (the tie cases tests/model/test_models_stats.py and tests/model/test_models_vs_r.py check).
#
# Writes fixtures/permutation_reference.json. Regenerate from the repository root with:
#   Rscript tests/reference/permutation_reference.R
suppressPackageStartupMessages({
  library(coin)
  library(jsonlite)
})

here <- "tests/reference/fixtures"
MIN_LEVEL <- 0.80

level_for <- function(smallest, conf = 0.95) {
  # conf when the smallest p reaches 1 - conf; else its achievable level when >= MIN_LEVEL; else NA
  if (smallest <= 1 - conf + 1e-12) return(conf)
  if (1 - smallest >= MIN_LEVEL - 1e-12) return(1 - smallest)
  NA
}

sign_patterns <- function(n) as.matrix(expand.grid(rep(list(c(-1, 1)), n)))

sign_flip <- function(d, conf = 0.95) {
  n <- length(d)
  S <- sign_patterns(n)
  stat <- abs(S %*% d)
  p <- mean(stat >= abs(sum(d)) - 1e-12 * sum(abs(d)))
  subsets <- S[rowSums(S > 0) > 0, , drop = FALSE] > 0
  means <- sort(apply(subsets, 1, function(s) mean(d[s])))
  N <- 2^n
  k <- floor((1 - conf) / 2 * N + 1e-9)
  level <- conf
  if (k == 0) { k <- 1; level <- level_for(2 / N, conf) }
  ci <- if (is.na(level)) c(NA, NA) else c(means[k], means[N - k])
  list(x = d, p = p, min_p = min(1, 2^(1 - sum(d != 0))), ci = ci, level = level)
}

rank_round <- function(x) signif(x, 12)

coin_p <- function(v) {
  v <- v[v != 0]
  if (length(v) == 0) return(1)
  pvalue(wilcoxsign_test(x ~ y, data = data.frame(x = v, y = 0), distribution = "exact",
                         zero.method = "Wilcoxon"))[1]
}

enumerated_p <- function(v) {
  v <- v[v != 0]
  r <- rank(abs(v))
  S <- sign_patterns(length(v)) > 0
  V <- S %*% r
  obs <- sum(r[v > 0])
  centre <- sum(r) / 2
  mean(abs(V - centre) >= abs(obs - centre) - 1e-9)
}

walsh <- function(x) { o <- outer(x, x, "+") / 2; sort(o[upper.tri(o, diag = TRUE)]) }

wilcoxon <- function(d, conf = 0.95, enumerate = length(d) <= 16) {
  nz <- d[rank_round(d) != 0]
  p <- coin_p(rank_round(nz))
  smallest <- min(1, 2^(1 - length(d)))
  level <- level_for(smallest, conf)
  reject_at <- if (!is.na(level) && level == conf) 1 - conf else smallest
  ci <- c(NA, NA)
  if (!is.na(level)) {
    jumps <- unique(walsh(d))
    points <- numeric(2 * length(jumps) - 1)
    points[seq(1, length(points), 2)] <- jumps
    points[seq(2, length(points), 2)] <- (head(jumps, -1) + tail(jumps, -1)) / 2
    ok <- function(mu) coin_p(rank_round(d - mu)) > reject_at * (1 + 1e-9)
    first <- NA
    for (k in seq_along(points)) if (ok(points[k])) { first <- k; break }
    if (!is.na(first)) {
      for (k in rev(seq(first, length(points)))) if (ok(points[k])) { last <- k; break }
      ci <- c(jumps[(first + 1) %/% 2], jumps[last %/% 2 + 1])
    }
  }
  out <- list(x = d, p = p, estimate = median(walsh(nz)), ci = ci, level = level,
              min_p = min(1, 2^(1 - length(nz))))
  if (enumerate) out$p_enumerated <- enumerated_p(rank_round(nz))
  out
}

vectors <- list(
  c(0.5, 0.5, 0.57, 0.6, 0.6),                       # five councils, ties: 95% not reachable
  c(1, -1, 2, 0.5, 0.5, -2, 3, 1.5, 0),               # ties and a zero
  c(0.2, 0.4, 0.4, 0.6, 0.8, 1.0),
  c(1, 1, 1),                                          # three councils: no interval at >= 80%
  c(0.25, -0.5, 0.25, 0.75),                           # four: 87.5%
  c(-0.3, 0.1, 0.1, 0.4, 0.4, 0.4, 0.9, 1.2, -0.2, 0.7, 0.3, 0.3),
  c(0.12, -0.31, 0.44, 0.05, -0.77, 0.61, 0.93, -0.18, 0.27, 1.4))   # no ties (sign flip only)

out <- list(versions = list(R = R.version.string, coin = as.character(packageVersion("coin"))))
out$sign_flip <- lapply(vectors, sign_flip)
out$wilcoxon <- lapply(vectors[1:6], wilcoxon)

# ---- council means of the committed panels (ties: the exact conditional branch) ---------------------
council_diffs <- function(d, later, earlier, status = NULL) {
  if (!is.null(status)) d <- d[d$status == status, ]
  m <- aggregate(value ~ council_code + wave, data = d, FUN = mean)
  w <- reshape(m, idvar = "council_code", timevar = "wave", direction = "wide")
  w <- w[order(w$council_code), ]
  a <- w[[paste0("value.", later)]]; b <- w[[paste0("value.", earlier)]]
  ok <- !is.na(a) & !is.na(b)
  a[ok] - b[ok]
}
panel_rows <- function(d, measure = NULL, groups = list(NULL)) {
  contrasts <- list(c("follow_up", "baseline"), c("early_impact", "baseline"), c("follow_up", "early_impact"))
  rows <- list()
  for (cc in contrasts) for (g in groups) {
    diffs <- council_diffs(d, cc[1], cc[2], g)
    r <- wilcoxon(diffs, enumerate = FALSE)
    r$x <- NULL
    rows[[length(rows) + 1]] <- c(list(measure = if (is.null(measure)) "" else measure,
                                       contrast = paste(cc[1], "-", cc[2]),
                                       group = if (is.null(g)) "all" else paste0("status=", g),
                                       n = length(diffs)), r)
  }
  rows
}
models <- read.csv(file.path(here, "models_data.csv"), stringsAsFactors = FALSE)
models <- models[!is.na(models$value), ]
out$models_data <- panel_rows(models)
demo <- read.csv(file.path(here, "demo_panel.csv"), stringsAsFactors = FALSE)
demo_rows <- list()
for (m in c("eff_leadership", "eff_voice")) {
  dm <- demo[demo$measure == m & !is.na(demo$value), ]
  demo_rows <- c(demo_rows, panel_rows(dm, m, c(list(NULL), as.list(sort(unique(dm$status))))))
}
out$demo_panel <- demo_rows

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           file.path(here, "permutation_reference.json"))
cat("wrote", file.path(here, "permutation_reference.json"), "\n")

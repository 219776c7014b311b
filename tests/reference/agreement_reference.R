# Krippendorff's alpha (nominal) and Cohen's kappa by hand, for tests/model/test_agreement.py.
#
#   Rscript tests/reference/agreement_reference.R
#
# Debian has no r-cran-irr, so both statistics are written out from their definitions
# (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"; Cohen 1960), in base R only.
# Writes fixtures/agreement_codes.csv (the data: answer x coder x theme, 0/1) and
# fixtures/agreement_expected.csv (question, theme, statistic, coders, estimate, agreement, n_answers).

set.seed(20191)
themes <- c("access", "method", "staff", "timing", "unused")
coders <- c("AB", "CD", "EF")
rows <- list()
for (question in c("lessons", "barriers")) {
  n <- if (question == "lessons") 60 else 25
  truth <- matrix(rbinom(n * length(themes), 1, c(0.35, 0.5, 0.2, 0.1, 0)), n, byrow = TRUE)
  truth[, 5] <- 0  # a theme no coder uses: alpha undefined
  for (i in seq_len(n)) {
    # every answer has a first coder; two in three a second, one in six a third
    k <- if (i %% 6 == 0) 3 else if (i %% 3 != 0) 2 else 1
    who <- sample(coders, k)
    for (coder in who) {
      flip <- rbinom(length(themes), 1, c(0.08, 0.2, 0.12, 0.3, 0))
      coded <- abs(truth[i, ] - flip)
      rows[[length(rows) + 1]] <- data.frame(question = question, answer_id = sprintf("%s-%03d", question, i),
                                             coder = coder, theme = themes, coded = coded)
    }
  }
}
codes <- do.call(rbind, rows)
dir.create("tests/reference/fixtures", showWarnings = FALSE)
write.csv(codes, "tests/reference/fixtures/agreement_codes.csv", row.names = FALSE)

alpha_nominal <- function(units) {
  # units: list of vectors of the values coders gave one unit (NA dropped); nominal distance
  units <- lapply(units, function(v) v[!is.na(v)])
  units <- units[sapply(units, length) >= 2]
  values <- sort(unique(unlist(units)))
  if (length(values) < 2) return(NA_real_)
  o <- matrix(0, length(values), length(values))
  for (v in units) {
    m <- length(v)
    tab <- table(factor(v, levels = values))
    for (c in seq_along(values)) for (k in seq_along(values)) {
      pairs <- if (c == k) tab[c] * (tab[c] - 1) else tab[c] * tab[k]
      o[c, k] <- o[c, k] + pairs / (m - 1)
    }
  }
  nc <- rowSums(o)
  n <- sum(nc)
  do <- sum(o[row(o) != col(o)])
  de <- (sum(outer(nc, nc)) - sum(nc^2)) / (n - 1)
  1 - do / de
}

percent_agreement <- function(units) {
  same <- 0; pairs <- 0
  for (v in units) {
    v <- v[!is.na(v)]
    m <- length(v)
    if (m < 2) next
    pairs <- pairs + m * (m - 1) / 2
    ones <- sum(v)
    same <- same + ones * (ones - 1) / 2 + (m - ones) * (m - ones - 1) / 2
  }
  same / pairs
}

kappa <- function(a, b) {
  po <- mean(a == b)
  pe <- mean(a) * mean(b) + (1 - mean(a)) * (1 - mean(b))
  if (pe == 1) return(NA_real_)
  (po - pe) / (1 - pe)
}

out <- list()
for (question in unique(codes$question)) {
  q <- codes[codes$question == question, ]
  per_answer <- tapply(q$coder, q$answer_id, function(x) length(unique(x)))
  double <- names(per_answer)[per_answer >= 2]
  d <- q[q$answer_id %in% double, ]
  for (theme in c(themes, "all")) {
    sel <- if (theme == "all") d else d[d$theme == theme, ]
    key <- paste(sel$answer_id, sel$theme)
    units <- split(sel$coded, key)
    out[[length(out) + 1]] <- data.frame(question = question, theme = theme, statistic = "krippendorff_alpha",
                                         coders = "all", estimate = alpha_nominal(units),
                                         agreement = percent_agreement(units), n_answers = length(double))
  }
  for (pair in combn(coders, 2, simplify = FALSE)) {
    both <- names(which(tapply(q$coder, q$answer_id, function(x) all(pair %in% x))))
    if (length(both) == 0) next
    for (theme in c(themes, "all")) {
      sel <- q[q$answer_id %in% both & (theme == "all" | q$theme == theme), ]
      a <- sel[sel$coder == pair[1], ]
      b <- sel[sel$coder == pair[2], ]
      b <- b[match(paste(a$answer_id, a$theme), paste(b$answer_id, b$theme)), ]
      out[[length(out) + 1]] <- data.frame(question = question, theme = theme, statistic = "cohen_kappa",
                                           coders = paste(pair, collapse = " & "), estimate = kappa(a$coded, b$coded),
                                           agreement = mean(a$coded == b$coded), n_answers = length(both))
    }
  }
}
expected <- do.call(rbind, out)
write.csv(expected, "tests/reference/fixtures/agreement_expected.csv", row.names = FALSE, na = "")
cat(sprintf("R %s: %d reference rows\n", getRversion(), nrow(expected)))

# The interval that inverts the exact McNemar test: given d = n01 + n10 discordant councils,
# binom.test(n01, d)$conf.int (Clopper-Pearson for theta = n01 / d) mapped to the difference in shares
# d / n * (2 theta - 1), and binom.test's p-value.
#
# Run from the repository root:  Rscript tests/reference/expectations_reference.R
# Writes tests/reference/fixtures/expectations_reference.json.
suppressMessages(library(jsonlite))
tables <- list(c(n01 = 2, n10 = 8, n = 27), c(n01 = 1, n10 = 6, n = 24), c(n01 = 5, n10 = 4, n = 24),
               c(n01 = 0, n10 = 5, n = 6), c(n01 = 3, n10 = 0, n = 40), c(n01 = 12, n10 = 30, n = 120))
rows <- lapply(tables, function(t) {
  d <- t[["n01"]] + t[["n10"]]
  b <- binom.test(t[["n01"]], d, 0.5)
  list(n01 = t[["n01"]], n10 = t[["n10"]], n = t[["n"]], estimate = (t[["n01"]] - t[["n10"]]) / t[["n"]],
       ci_low = d / t[["n"]] * (2 * b$conf.int[1] - 1), ci_high = d / t[["n"]] * (2 * b$conf.int[2] - 1),
       p_value = b$p.value)
})
write_json(list(R = R.version.string, rows = rows), "tests/reference/fixtures/expectations_reference.json",
           auto_unbox = TRUE, digits = NA, pretty = TRUE)

# The share of answers at or above a level, per wave (and wave x status), with council-clustered CR1
# errors: lm(y ~ 0 + cell) and sandwich::vcovCL(cluster = ~council, type = "HC1"); changes between
# waves and differences in change between status levels as contrasts of the cell coefficients.
#
# Run from the repository root:  Rscript tests/reference/shares_reference.R
# Reads  tests/reference/fixtures/demo_panel.csv; writes tests/reference/fixtures/shares_reference.json
suppressMessages({library(sandwich); library(jsonlite)})
fixtures <- "tests/reference/fixtures"
panel <- read.csv(file.path(fixtures, "demo_panel.csv"), stringsAsFactors = FALSE)
waves <- c("baseline", "early_impact", "follow_up")
pairs <- list(c("early_impact", "baseline"), c("follow_up", "baseline"), c("follow_up", "early_impact"))
threshold <- 4

fit_cells <- function(d, by_status) {
  d$y <- as.numeric(d$value >= threshold)
  d$cell <- if (by_status) factor(paste(d$status, d$wave, sep = "|")) else factor(d$wave)
  fit <- lm(y ~ 0 + cell, data = d)
  V <- vcovCL(fit, cluster = ~council_code, type = "HC1")
  b <- coef(fit); names(b) <- sub("^cell", "", names(b)); dimnames(V) <- list(names(b), names(b))
  list(b = b, V = V)
}
contrast <- function(f, weights) {
  l <- setNames(rep(0, length(f$b)), names(f$b))
  for (k in names(weights)) l[k] <- l[k] + weights[[k]]
  list(estimate = sum(l * f$b), std_error = sqrt(drop(t(l) %*% f$V %*% l)))
}

out <- list(versions = list(R = R.version.string, sandwich = as.character(packageVersion("sandwich"))))
for (m in c("eff_leadership", "eff_voice")) {
  d <- panel[panel$measure == m, ]
  all <- fit_cells(d, FALSE)
  st <- fit_cells(d, TRUE)
  levels_all <- lapply(waves, function(w) list(wave = w, group = "all", estimate = unname(all$b[w]),
                                               std_error = sqrt(all$V[w, w])))
  changes <- lapply(pairs, function(p) c(list(contrast = paste(p[1], "-", p[2]), group = "all"),
                                         contrast(all, setNames(list(1, -1), p))))
  status <- sort(unique(d$status))
  for (s in status) for (p in pairs) {
    changes[[length(changes) + 1]] <- c(list(contrast = paste(p[1], "-", p[2]), group = paste0("status=", s)),
      contrast(st, setNames(list(1, -1), paste(s, p, sep = "|"))))
  }
  ref <- "Adequate"
  diffs <- list()
  for (s in setdiff(status, ref)) for (p in pairs) {
    w <- setNames(list(1, -1, -1, 1), c(paste(s, p, sep = "|"), paste(ref, p, sep = "|")))
    diffs[[length(diffs) + 1]] <- c(list(contrast = paste(p[1], "-", p[2]),
                                         group = paste0("status=", s, " - status=", ref)), contrast(st, w))
  }
  out[[m]] <- list(levels = levels_all, changes = changes, differences = diffs)
}
write_json(out, file.path(fixtures, "shares_reference.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)

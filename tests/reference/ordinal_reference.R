# Reference values from R for impactstudy.model.stats.ordinal (the ordinal rows of contrasts.csv).
#
# Each contrast (later - earlier) and each group level gets its own proportional-odds fit to the answers
# of the councils with answers at both waves, each answer weighted 1/n (n: its council's answers at its
# wave), so every council counts once per wave:
#   clm(ordered(value) ~ later, weights = w, link = "logit")
# with the council-clustered sandwich vcovCL(fit, cluster = council, type = "HC1") (CRV1 factor
# G/(G-1) * (N-1)/(N-K)) and a t reference on G - 1 df (G councils at both waves; every data set here has
# fewer than 40). Fewer than 3 councils at both waves: not estimable. Also, per contrast, the former
# estimand -- clm on every answer at the two waves, unweighted -- to show how far apart they are.
#
# Data: fixtures/models_data.csv (models_reference.R: 30 councils, 1-4 recurring respondents, missed
# waves) and fixtures/ordinal_simulated.csv (ordinal_export.py: two studies of the coverage simulation).
# Writes fixtures/ordinal_reference.json; tests/model/test_ordinal.py reads it (it never needs R).
#
# Regenerate from the repository root with:  Rscript tests/reference/ordinal_reference.R
suppressPackageStartupMessages(library(jsonlite))
source("tests/reference/ordinal_contrast.R")  # ordinal_contrast(); loads ordinal and sandwich
here <- "tests/reference/fixtures"
waves <- c("baseline", "early_impact", "follow_up")
contrasts <- list(c("early_impact", "baseline"), c("follow_up", "baseline"), c("follow_up", "early_impact"))

fits <- function(d) {
  rows <- list()
  for (level in c("all", sort(unique(d$status)))) {
    dl <- if (level == "all") d else d[d$status == level, ]
    for (k in contrasts) {
      r <- ordinal_contrast(dl, k[1], k[2])
      r$group <- if (level == "all") "all" else paste0("status=", level)
      rows[[length(rows) + 1]] <- r
    }
  }
  rows
}

models <- read.csv(file.path(here, "models_data.csv"), colClasses = c(council_code = "character",
                                                                     respondent_id = "character"))
sims <- read.csv(file.path(here, "ordinal_simulated.csv"), colClasses = c(council_code = "character",
                                                                        respondent_id = "character"))
out <- list(r_version = R.version.string, ordinal = as.character(packageVersion("ordinal")),
            sandwich = as.character(packageVersion("sandwich")), waves = waves, sets = list())
out$sets[[length(out$sets) + 1]] <- list(data = "models_data.csv", study = "", measure = "value",
                                         rows = fits(models))
for (study in unique(sims$study)) {
  for (measure in unique(sims$measure)) {
    d <- sims[sims$study == study & sims$measure == measure, ]
    out$sets[[length(out$sets) + 1]] <- list(data = "ordinal_simulated.csv", study = study, measure = measure,
                                             rows = fits(d))
  }
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "ordinal_reference.json"))
cat("wrote", file.path(here, "ordinal_reference.json"), "\n")

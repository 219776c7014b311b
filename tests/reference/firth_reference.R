# Firth-penalised logistic regression: estimates (brglm2), separation (brglm2::detect_separation),
# profile penalised-likelihood intervals and penalised likelihood-ratio tests (written out here from
# the definition, as R logistf computes them: logistf is not packaged for Debian).
#
# Run from the repository root:  Rscript tests/reference/firth_reference.R
# Reads  tests/reference/fixtures/firth_attrition.csv (the demo's baseline councils: status, baseline
#        score, took part at follow-up) and writes tests/reference/fixtures/firth_endometrial.csv
#        (brglm2's endometrial data, the textbook case of quasi-complete separation), then
# writes  tests/reference/fixtures/firth_reference.json.
suppressMessages({library(brglm2); library(jsonlite); library(lpSolve)})
fixtures <- "tests/reference/fixtures"

# Separation as Konis (2007) and R detectseparation find it (detectseparation is not packaged for
# Debian; brglm2 >= 0.8 dropped its copy): maximise sum_i s_i x_i'b over b in [-1, 1]^p subject to
# s_i x_i'b >= 0 (s_i = 2 y_i - 1). A positive maximum means separation; the coefficients non-zero at
# the optimum have infinite maximum-likelihood estimates, in the direction of their sign.
separation <- function(X, y) {
  s <- 2 * y - 1
  A <- s * X
  p <- ncol(X)
  # b = u - v with u, v in [0, 1]
  con <- rbind(cbind(A, -A), diag(2 * p))
  fit <- lp("max", c(colSums(A), -colSums(A)), con, c(rep(">=", nrow(A)), rep("<=", 2 * p)),
            c(rep(0, nrow(A)), rep(1, 2 * p)))
  b <- fit$solution[seq_len(p)] - fit$solution[p + seq_len(p)]
  direction <- ifelse(abs(b) > 1e-6, sign(b), 0)
  names(direction) <- colnames(X)
  list(separation = fit$objval > 1e-6, direction = as.list(direction))
}

# penalised log-likelihood l(b) + 1/2 log|X'WX| (Jeffreys prior), the quantity logistf profiles
penalised <- function(beta, X, y) {
  eta <- drop(X %*% beta)
  p <- plogis(eta)
  info <- crossprod(X * sqrt(p * (1 - p)))
  sum(y * eta - log1p(exp(eta))) + 0.5 * as.numeric(determinant(info, logarithm = TRUE)$modulus)
}

# maximum of the penalised likelihood with coefficient j held at value b (all others free)
profile_max <- function(j, b, X, y, start) {
  free <- setdiff(seq_len(ncol(X)), j)
  f <- function(g) { beta <- start; beta[free] <- g; beta[j] <- b; -penalised(beta, X, y) }
  fit <- optim(start[free], f, method = "BFGS", control = list(reltol = 1e-14, maxit = 10000))
  fit <- optim(fit$par, f, method = "Nelder-Mead", control = list(reltol = 1e-14, maxit = 20000))
  fit <- optim(fit$par, f, method = "BFGS", control = list(reltol = 1e-15, maxit = 10000))
  -fit$value
}

firth <- function(formula, data) {
  fit <- glm(formula, family = binomial, data = data, method = "brglmFit", type = "AS_mean",
             control = brglmControl(epsilon = 1e-12, maxit = 500))
  X <- model.matrix(fit); y <- fit$y; beta <- coef(fit)
  top <- penalised(beta, X, y)
  crit <- qchisq(0.95, 1) / 2
  rows <- lapply(seq_along(beta), function(j) {
    dev <- function(b) profile_max(j, b, X, y, beta) - (top - crit)
    se <- sqrt(diag(vcov(fit)))[j]
    bound <- function(direction) {
      step <- se; far <- beta[j] + direction * step
      while (dev(far) > 0) { step <- 2 * step; far <- beta[j] + direction * step }
      uniroot(dev, sort(c(beta[j], far)), tol = 1e-10)$root
    }
    chisq <- 2 * (top - profile_max(j, 0, X, y, beta))
    list(term = names(beta)[j], estimate = unname(beta[j]), std_error = unname(se),
         ci_low = bound(-1), ci_high = bound(1), statistic = chisq, p_value = pchisq(chisq, 1, lower.tail = FALSE))
  })
  sep <- separation(X, y)
  list(coefficients = rows, separation = sep$separation, direction = sep$direction, penalised_loglik = top)
}

attr <- read.csv(file.path(fixtures, "firth_attrition.csv"), stringsAsFactors = FALSE)
attr$status <- relevel(factor(attr$status), ref = "Adequate")
data("endometrial", package = "brglm2")
write.csv(endometrial, file.path(fixtures, "firth_endometrial.csv"), row.names = FALSE)

out <- list(
  versions = list(R = R.version.string, brglm2 = as.character(packageVersion("brglm2"))),
  attrition = firth(y ~ status + baseline_score, attr),
  endometrial = firth(HG ~ NV + PI + EH, endometrial)
)
write_json(out, file.path(fixtures, "firth_reference.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)

# Helpers shared by make_reference.R and make_brms_reference.R (sourced, not run alone).

`%||%` <- function(a, b) if (is.null(a)) b else a

fmt_num <- function(x) ifelse(is.finite(x), sprintf("%.17g", x), "null")

# Turn an R tree into something jsonlite writes with full precision: doubles become
# verbatim JSON text, named vectors become objects, unnamed vectors of length > 1 arrays.
json_tree <- function(x) {
  if (is.null(x)) return(NULL)
  if (is.list(x)) return(lapply(x, json_tree))
  if (is.factor(x)) x <- as.character(x)
  if (is.matrix(x)) x <- as.vector(x)
  nm <- names(x)
  if (is.double(x)) {
    s <- fmt_num(as.numeric(x))
    if (!is.null(nm)) return(lapply(setNames(as.list(s), nm), function(v) structure(v, class = "json")))
    if (length(s) == 1) return(structure(s, class = "json"))
    return(structure(paste0("[", paste(s, collapse = ","), "]"), class = "json"))
  }
  if (!is.null(nm)) return(as.list(setNames(as.vector(x), nm)))
  if (length(x) != 1) return(as.list(x))
  x
}

write_json_full <- function(x, path) {
  txt <- toJSON(json_tree(x), auto_unbox = TRUE, json_verbatim = TRUE, pretty = TRUE,
                null = "null", na = "null")
  writeLines(txt, path, useBytes = TRUE)
  invisible(fromJSON(path, simplifyVector = FALSE))  # fails loudly if not valid JSON
}

# CSV with doubles at 17 significant digits; only character columns are quoted.
write_csv_full <- function(df, path) {
  out <- df
  for (j in seq_along(out)) if (is.double(out[[j]])) {
    txt <- fmt_num(out[[j]])
    txt[txt == "null"] <- ""
    out[[j]] <- txt
  }
  quote_cols <- which(vapply(df, function(c) is.character(c) || is.factor(c), logical(1)))
  write.csv(out, path, row.names = FALSE, quote = if (length(quote_cols)) quote_cols else FALSE,
            na = "", fileEncoding = "UTF-8", eol = "\n")
}

md5 <- function(path) unname(tools::md5sum(path))

# Evaluate, collecting warnings; errors are recorded, not fatal.
attempt <- function(expr) {
  warns <- character()
  val <- withCallingHandlers(
    tryCatch(expr, error = function(e) structure(list(message = conditionMessage(e)), class = "failed")),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    }
  )
  list(value = val, warnings = as.list(unique(warns)))
}
failed <- function(a) inherits(a$value, "failed")

pkg_version <- function(p) tryCatch(as.character(packageVersion(p)), error = function(e) NA_character_)


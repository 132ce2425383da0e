; Span selection captures (one naming scheme across languages, see infill/spans.py):
; @block body of a compound statement, @args bracketed argument/parameter list,
; @statement a whole statement, @expression an expression, @string / @comment literal text.

(block) @block

[(argument_list) (parameters)] @args

[
  (expression_statement) (return_statement) (pass_statement) (import_statement)
  (import_from_statement) (future_import_statement) (assert_statement) (raise_statement)
  (delete_statement) (global_statement) (nonlocal_statement) (break_statement)
  (continue_statement) (print_statement) (exec_statement) (type_alias_statement)
  (if_statement) (for_statement) (while_statement) (try_statement) (with_statement)
  (match_statement) (function_definition) (class_definition) (decorated_definition)
] @statement

(expression) @expression

(string) @string

(comment) @comment

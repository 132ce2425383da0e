; Span selection captures (one naming scheme across languages, see infill/spans.py):
; @block body of a compound statement, @args bracketed argument/parameter list,
; @statement a whole statement, @expression an expression, @string / @comment literal text.

[(compound_statement) (field_declaration_list) (enumerator_list) (initializer_list)] @block

[(argument_list) (parameter_list)] @args

[
  (statement) (declaration) (function_definition) (type_definition) (preproc_include)
  (preproc_def) (preproc_function_def) (field_declaration)
] @statement

(expression) @expression

[(string_literal) (char_literal) (system_lib_string)] @string

(comment) @comment

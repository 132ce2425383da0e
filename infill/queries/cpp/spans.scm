; Span selection captures (one naming scheme across languages, see infill/spans.py):
; @block body of a compound statement, @args bracketed argument/parameter list,
; @statement a whole statement, @expression an expression, @string / @comment literal text.

[
  (compound_statement) (field_declaration_list) (enumerator_list) (declaration_list)
  (initializer_list)
] @block

[(argument_list) (parameter_list) (template_argument_list) (template_parameter_list)] @args

[
  (expression_statement) (declaration) (return_statement) (if_statement) (for_statement)
  (for_range_loop) (while_statement) (do_statement) (switch_statement) (case_statement)
  (break_statement) (continue_statement) (goto_statement) (labeled_statement)
  (try_statement) (throw_statement) (co_return_statement) (co_yield_statement)
  (function_definition) (template_declaration) (namespace_definition) (using_declaration)
  (alias_declaration) (type_definition) (field_declaration) (static_assert_declaration)
  (preproc_include) (preproc_def) (preproc_function_def)
] @statement

[
  (call_expression) (binary_expression) (unary_expression) (field_expression)
  (subscript_expression) (assignment_expression) (conditional_expression)
  (lambda_expression) (new_expression) (cast_expression) (parenthesized_expression)
  (update_expression) (pointer_expression)
] @expression

[(string_literal) (raw_string_literal) (char_literal) (system_lib_string)] @string

(comment) @comment

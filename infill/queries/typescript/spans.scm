; Span selection captures (one naming scheme across languages, see infill/spans.py):
; @block body of a compound statement, @args bracketed argument/parameter list,
; @statement a whole statement, @expression an expression, @string / @comment literal text.
; Also used for tsx (same node names).

[(statement_block) (class_body) (switch_body) (interface_body) (enum_body)] @block

[(arguments) (formal_parameters) (type_arguments) (type_parameters)] @args

[
  (expression_statement) (lexical_declaration) (variable_declaration) (return_statement)
  (if_statement) (for_statement) (for_in_statement) (while_statement) (do_statement)
  (try_statement) (switch_statement) (throw_statement) (break_statement)
  (continue_statement) (import_statement) (export_statement) (labeled_statement)
  (function_declaration) (generator_function_declaration) (class_declaration)
  (abstract_class_declaration) (interface_declaration) (type_alias_declaration)
  (enum_declaration) (ambient_declaration) (method_definition) (public_field_definition)
] @statement

[
  (call_expression) (binary_expression) (unary_expression) (member_expression)
  (subscript_expression) (assignment_expression) (augmented_assignment_expression)
  (ternary_expression) (arrow_function) (object) (array) (new_expression)
  (await_expression) (parenthesized_expression) (as_expression)
] @expression

[(string) (template_string) (regex)] @string

[(comment) (html_comment)] @comment

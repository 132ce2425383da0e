; Span selection captures (one naming scheme across languages, see infill/spans.py):
; @block body of a compound statement, @args bracketed argument/parameter list,
; @statement a whole statement, @expression an expression, @string / @comment literal text.

[
  (block) (class_body) (interface_body) (enum_body) (constructor_body) (switch_block)
  (annotation_type_body)
] @block

[(argument_list) (formal_parameters) (type_arguments) (annotation_argument_list)] @args

[
  (expression_statement) (local_variable_declaration) (return_statement) (if_statement)
  (for_statement) (enhanced_for_statement) (while_statement) (do_statement) (try_statement)
  (try_with_resources_statement) (switch_expression) (throw_statement) (break_statement)
  (continue_statement) (assert_statement) (yield_statement) (synchronized_statement)
  (labeled_statement) (method_declaration) (constructor_declaration) (field_declaration)
  (class_declaration) (interface_declaration) (enum_declaration) (record_declaration)
  (annotation_type_declaration) (import_declaration) (package_declaration)
] @statement

[
  (method_invocation) (binary_expression) (unary_expression) (field_access)
  (array_access) (assignment_expression) (ternary_expression) (lambda_expression)
  (object_creation_expression) (cast_expression) (parenthesized_expression)
  (instanceof_expression) (update_expression) (array_creation_expression)
] @expression

[(string_literal) (character_literal)] @string

[(line_comment) (block_comment)] @comment

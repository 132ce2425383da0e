; Span selection captures (one naming scheme across languages, see infill/spans.py):
; @block body of a compound statement, @args bracketed argument/parameter list,
; @statement a whole statement, @expression an expression, @string / @comment literal text.

[(block) (declaration_list) (field_declaration_list) (match_block) (enum_variant_list)] @block

[(arguments) (parameters) (closure_parameters) (type_arguments) (type_parameters)] @args

[
  (expression_statement) (let_declaration) (empty_statement) (function_item)
  (function_signature_item) (struct_item) (enum_item) (union_item) (impl_item) (trait_item)
  (mod_item) (use_declaration) (const_item) (static_item) (type_item) (macro_definition)
  (extern_crate_declaration) (foreign_mod_item) (attribute_item)
] @statement

(_expression) @expression

[(string_literal) (raw_string_literal) (char_literal)] @string

[(line_comment) (block_comment)] @comment

; Name resolution facts for Rust; the capture scheme is the one described in
; queries/python/locals.scm. Items are visible in their whole block or module, in any order;
; `let` bindings too (shadowing order is not followed: known rather than reported). A module body
; is treated as seeing its parent's items (Rust asks for `use super::...`): known, not reported.
; Paths (`a::b`, `Self::Item`) are never checked: their first segment may be any crate.

; ---- scopes
(function_item) @local.scope.function @local.owns.self
(closure_expression) @local.scope.function
[
  (block)
  (declaration_list)
  (match_arm)
  (for_expression)
  (while_expression)
  (if_expression)
] @local.scope
; a method binds `self`; closures in it see it, a nested fn does not
((function_item parameters: (parameters (self_parameter))) @local.binds.self)
(function_signature_item) @local.scope.function @local.owns.self
((function_signature_item parameters: (parameters (self_parameter))) @local.binds.self)
; `Self` names the type being defined or implemented
[
  (impl_item)
  (trait_item)
  (struct_item)
  (enum_item)
  (union_item)
] @local.scope @local.binds.Self
; a glob import may bring in any name
((block (use_declaration argument: (use_wildcard))) @local.open)
((declaration_list (use_declaration argument: (use_wildcard))) @local.open)
((source_file (use_declaration argument: (use_wildcard))) @local.open)

; ---- item definitions
(function_item name: (identifier) @local.definition.outer)
(function_signature_item name: (identifier) @local.definition.outer)
(struct_item name: (type_identifier) @local.definition.outer)
(enum_item name: (type_identifier) @local.definition.outer)
(union_item name: (type_identifier) @local.definition.outer)
(trait_item name: (type_identifier) @local.definition.outer)
(type_item name: (type_identifier) @local.definition)
(associated_type name: (type_identifier) @local.definition)
(const_item name: (identifier) @local.definition)
(static_item name: (identifier) @local.definition)
(mod_item name: (identifier) @local.definition)
(extern_crate_declaration name: (identifier) @local.definition !alias)
(extern_crate_declaration alias: (identifier) @local.definition)
(macro_definition name: (identifier) @local.ignore)
(type_parameter name: (type_identifier) @local.definition)
(const_parameter name: (identifier) @local.definition)

; `use a::b::C;`, `use a::{B, c::D as E, f::{self}}`
(use_declaration argument: (identifier) @local.definition)
(use_declaration argument: (scoped_identifier name: (identifier) @local.definition))
(use_list (identifier) @local.definition)
(use_list (scoped_identifier name: (identifier) @local.definition))
(use_as_clause alias: (identifier) @local.definition)
(use_declaration argument: (use_as_clause alias: (identifier) @local.definition))
(scoped_use_list path: (identifier) @local.definition list: (use_list (self)))
(scoped_use_list path: (scoped_identifier name: (identifier) @local.definition) list: (use_list (self)))
(use_declaration) @local.skip

; ---- bindings: parameters and patterns; in a pattern a name in capitals is a constant or a
; variant (a use), one in lower case a new binding
(parameter pattern: (identifier) @local.definition)
(closure_parameters (identifier) @local.definition)
(let_declaration pattern: (identifier) @local.definition)
(for_expression pattern: (identifier) @local.definition)
(let_condition pattern: (identifier) @local.definition)
((match_pattern (identifier) @local.definition) (#match? @local.definition "^[a-z_]"))
((tuple_pattern (identifier) @local.definition) (#match? @local.definition "^[a-z_]"))
((slice_pattern (identifier) @local.definition) (#match? @local.definition "^[a-z_]"))
((or_pattern (identifier) @local.definition) (#match? @local.definition "^[a-z_]"))
((tuple_struct_pattern type: (_) (identifier) @local.definition) (#match? @local.definition "^[a-z_]"))
(captured_pattern . (identifier) @local.definition)
(ref_pattern (identifier) @local.definition)
(mut_pattern (identifier) @local.definition)
(reference_pattern (identifier) @local.definition)
(field_pattern name: (shorthand_field_identifier) @local.definition)
(field_pattern pattern: (identifier) @local.definition)

; ---- references: values, types, `self` and struct shorthand (`P { x }` reads x)
(identifier) @local.reference
(type_identifier) @local.reference
(self) @local.reference
(scoped_identifier path: (_) @local.ignore)
(scoped_identifier name: (_) @local.ignore)
(scoped_type_identifier path: (_) @local.ignore)
(scoped_type_identifier name: (_) @local.ignore)
(enum_variant name: (identifier) @local.ignore)
(type_binding name: (type_identifier) @local.ignore)
(lifetime (identifier) @local.ignore)
(label (identifier) @local.ignore)
(macro_invocation macro: (identifier) @local.ignore)
(macro_invocation (token_tree) @local.opaque)
(macro_definition) @local.opaque
[
  (attribute_item)
  (inner_attribute_item)
] @local.skip

; ---- files whose names the query cannot see
(macro_invocation macro: (identifier) @_m (#eq? @_m "include")) @local.undecidable

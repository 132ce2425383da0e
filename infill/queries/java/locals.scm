; Name resolution facts for Java; the capture scheme is the one described in
; queries/python/locals.scm. Only names in lower case are checked: a name in capitals may be a class
; of the same package or a constant of a static import, which this file does not show. A class
; that extends or implements anything may inherit any member, so its body is @local.open, as are
; anonymous and enum bodies (Enum's and the supertype's members) and a file with a static glob
; import.

; ---- scopes
[
  (method_declaration)
  (constructor_declaration)
  (compact_constructor_declaration)
  (lambda_expression)
] @local.scope.function
[
  (class_body)
  (interface_body)
  (enum_body)
] @local.scope @local.binds.this
[
  (block)
  (constructor_body)
  (for_statement)
  (enhanced_for_statement)
  (catch_clause)
  (try_with_resources_statement)
  (switch_block)
] @local.scope
; a static method has no `this`
((method_declaration (modifiers "static")) @local.owns.this)
; inherited members
((class_declaration superclass: (_) body: (class_body) @local.open))
((class_declaration interfaces: (_) body: (class_body) @local.open))
((record_declaration interfaces: (_) body: (class_body) @local.open))
((interface_declaration (extends_interfaces) body: (interface_body) @local.open))
((object_creation_expression (class_body) @local.open))
((enum_declaration body: (enum_body) @local.open))
((program (import_declaration "static" (asterisk))) @local.open)

; ---- definitions
(method_declaration name: (identifier) @local.definition.outer)
(annotation_type_element_declaration name: (identifier) @local.definition)
[
  (class_declaration name: (identifier) @local.definition)
  (interface_declaration name: (identifier) @local.definition)
  (enum_declaration name: (identifier) @local.definition)
  (record_declaration name: (identifier) @local.definition)
  (annotation_type_declaration name: (identifier) @local.definition)
]
(variable_declarator name: (identifier) @local.definition)
(formal_parameter name: (identifier) @local.definition)
(spread_parameter (variable_declarator name: (identifier) @local.definition))
(catch_formal_parameter name: (identifier) @local.definition)
(enhanced_for_statement name: (identifier) @local.definition)
(resource name: (identifier) @local.definition)
(inferred_parameters (identifier) @local.definition)
(lambda_expression parameters: (identifier) @local.definition)
(instanceof_expression name: (identifier) @local.definition)
(record_pattern_component (identifier) @local.definition)
(type_pattern (identifier) @local.definition)
(enum_constant name: (identifier) @local.definition)
(import_declaration "static" (scoped_identifier name: (identifier) @local.definition))

; ---- references: names in lower case and `this`
((identifier) @local.reference (#match? @local.reference "^[a-z_$]"))
(this) @local.reference
(field_access field: (_) @local.ignore)
(method_invocation object: (_) name: (identifier) @local.ignore)
; `java.util.List.of()`: a package's first segment
(field_access object: (field_access object: (identifier) @local.ignore))
(method_invocation object: (field_access object: (identifier) @local.ignore))
(method_reference . (_) (identifier) @local.ignore)
(labeled_statement (identifier) @local.ignore)
(break_statement (identifier) @local.ignore)
(continue_statement (identifier) @local.ignore)
(switch_label (identifier) @local.ignore)
[
  (module_declaration)
  (package_declaration)
  (import_declaration)
  (annotation)
  (marker_annotation)
] @local.skip

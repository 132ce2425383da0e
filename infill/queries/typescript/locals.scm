; inherits: ecma
; TypeScript on top of queries/ecma/locals.scm: typed parameters, type parameters and declared
; types. Values and types share one namespace here, so a name is known if either defines it.

; parameters: `(x: T, y?: U, ...r)`; a `this` parameter declares nothing
(required_parameter pattern: (identifier) @local.definition)
(optional_parameter pattern: (identifier) @local.definition)
(required_parameter pattern: (this) @local.ignore)
; a function declaring a `this` parameter binds it
((function_declaration parameters: (formal_parameters (required_parameter pattern: (this)))) @local.binds.this)
; named tuple members `[first: string]` are labels
(tuple_type (required_parameter name: (identifier) @local.ignore))
(tuple_type (optional_parameter name: (identifier) @local.ignore))
(import_require_clause (identifier) @local.definition)
; index signatures `[key: string]: T` name their key for the reader only
(index_signature name: (identifier) @local.ignore)
; enum members are visible to the later members' initialisers (`B = A`)
(enum_body name: (property_identifier) @local.definition)
(enum_assignment name: (property_identifier) @local.definition)

; types
(type_parameter name: (type_identifier) @local.definition)
(interface_declaration name: (type_identifier) @local.definition)
(type_alias_declaration name: (type_identifier) @local.definition)
(enum_declaration name: (identifier) @local.definition)
(abstract_class_declaration name: (type_identifier) @local.definition)
(internal_module name: (identifier) @local.definition)
(module name: (identifier) @local.definition)
(function_signature name: (identifier) @local.definition)
(mapped_type_clause name: (type_identifier) @local.definition)
(infer_type (type_identifier) @local.definition)
; `declare global { ... }` declares names for the whole program
(ambient_declaration (statement_block (interface_declaration name: (type_identifier) @local.definition.global)))
(ambient_declaration (statement_block (type_alias_declaration name: (type_identifier) @local.definition.global)))
(ambient_declaration (statement_block (function_signature name: (identifier) @local.definition.global)))
(ambient_declaration (statement_block (lexical_declaration (variable_declarator name: (identifier) @local.definition.global))))

; type references (checked against the types above and builtins.txt)
(type_identifier) @local.reference
(nested_type_identifier name: (type_identifier) @local.ignore)

; Name resolution facts shared by JavaScript, TypeScript and TSX (their locals.scm inherit this
; file); the capture scheme is the one described in queries/python/locals.scm.
; `var`, function declarations and destructured names are hoisted to the function (destructuring
; is hoisted whatever its keyword: visible too widely rather than too narrowly); `let`, `const`,
; classes and catch parameters stay in their block.

; ---- scopes: `arguments` is bound by every non-arrow function; `this` by function expressions
; (assigned as methods, passed to callers that set it), methods, class bodies and constructor
; functions (a declaration named in capitals), not by a plain function declaration; an arrow
; function binds neither and sees its parent's
[
  (function_declaration)
  (generator_function_declaration)
] @local.scope.function @local.binds.arguments @local.owns.this
([
  (function_declaration name: (identifier) @_name)
  (generator_function_declaration name: (identifier) @_name)
] @local.binds.this
  (#match? @_name "^[A-Z]"))
; a declaration used as a value (assigned, passed, exported, reached through `.call`, `.bind` or
; `.prototype`) may be called with a `this`; one that is only ever called plainly has none
(function_declaration name: (identifier) @local.binds_if_escapes.this)
(generator_function_declaration name: (identifier) @local.binds_if_escapes.this)
(assignment_expression right: (identifier) @local.escape)
(variable_declarator value: (identifier) @local.escape)
(arguments (identifier) @local.escape)
(member_expression object: (identifier) @local.escape)
(pair value: (identifier) @local.escape)
(shorthand_property_identifier) @local.escape
(export_specifier name: (identifier) @local.escape)
(array (identifier) @local.escape)
(return_statement (identifier) @local.escape)
(export_statement declaration: (function_declaration name: (identifier) @local.escape))
(export_statement value: (identifier) @local.escape)
; at top level `this` is the module's exports (CommonJS) or the global object (a script); an ES
; module (one with an import or export) has none
(program) @local.binds.this
(import_statement) @local.unbinds.this
(export_statement) @local.unbinds.this
[
  (function_expression)
  (generator_function)
  (method_definition)
] @local.scope.function @local.binds.this @local.binds.arguments
(arrow_function) @local.scope.function
(class_body) @local.scope @local.binds.this
[
  (statement_block)
  (for_statement)
  (for_in_statement)
  (catch_clause)
  (switch_body)
] @local.scope

; ---- definitions
(function_declaration name: (identifier) @local.definition.outer.hoisted)
(generator_function_declaration name: (identifier) @local.definition.outer.hoisted)
(function_expression name: (identifier) @local.definition)
(generator_function name: (identifier) @local.definition)
(class_declaration name: (_) @local.definition)
(class name: (_) @local.definition)

(variable_declaration (variable_declarator name: (identifier) @local.definition.hoisted))
(lexical_declaration (variable_declarator name: (identifier) @local.definition))
(shorthand_property_identifier_pattern) @local.definition.hoisted
(array_pattern (identifier) @local.definition.hoisted)
(pair_pattern value: (identifier) @local.definition.hoisted)
(assignment_pattern left: (identifier) @local.definition.hoisted)
(rest_pattern (identifier) @local.definition.hoisted)
(for_in_statement left: (identifier) @local.definition.hoisted)
(catch_clause parameter: (identifier) @local.definition)
(arrow_function parameter: (identifier) @local.definition)
; an assignment to an undeclared name makes a global (sloppy mode): known rather than reported
(assignment_expression left: (identifier) @local.definition.global)

(import_clause (identifier) @local.definition)
(namespace_import (identifier) @local.definition)
(import_specifier name: (identifier) @local.definition !alias)
(import_specifier alias: (identifier) @local.definition)
(import_specifier name: (_) @local.ignore alias: (_))

; ---- references: identifiers, object shorthand (`{ a }` reads a) and `this`
(identifier) @local.reference
(shorthand_property_identifier) @local.reference
(this) @local.reference
(export_specifier alias: (_) @local.ignore)
(export_statement (export_clause (export_specifier name: (_) @local.ignore)) source: (_))
(namespace_export (_) @local.ignore)
; `typeof x` is how code asks whether a global exists
(unary_expression operator: "typeof" argument: (identifier) @local.ignore)

; ---- files whose names the query cannot see
(with_statement) @local.undecidable
(call_expression function: (identifier) @_fn (#eq? @_fn "eval")) @local.undecidable

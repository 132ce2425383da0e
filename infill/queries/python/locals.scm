; Name resolution facts for infill.scope. Captures (one scheme across languages):
;   @local.scope[.function|.class]   a node that opens a scope; a function scope is where hoisted
;                                    definitions land; a class scope is invisible to the functions
;                                    nested in it (Python methods do not see class-level names)
;   @local.binds.NAME                the scope node binds NAME implicitly (JavaScript's `this`);
;                                    on the root node, the module does
;   @local.owns.NAME                 the scope node has its own NAME, bound only if it binds it:
;                                    a lookup of NAME stops there
;   @local.unbinds.NAME              anywhere in the file: the module does not bind NAME
;   @local.binds_if_escapes.NAME     on a function's name: the function binds NAME when the name
;                                    is also captured as @local.escape (used as a value somewhere)
;   @local.definition[.outer][.hoisted|.global]
;                                    a name defined in the innermost scope around it; .outer: in
;                                    the scope around that one (a function's own name); .hoisted:
;                                    in the nearest function (or class, module) scope; .global: at
;                                    module level
;   @local.reference                 a name use to resolve
;   @local.ignore                    an identifier that is no name use (attribute, keyword name)
;   @local.header                    a function's parameters and return type: evaluated where the
;                                    function is defined, so a method's defaults see class names
;   @local.skip                      identifiers inside are no uses (attributes, `use` paths)
;   @local.opaque                    identifiers inside are no uses and its words count as known
;                                    names everywhere (a macro's token tree may define them)
;   @local.open                      on a scope: a glob import there may define any name, so a
;                                    lookup that reaches it succeeds
;   @local.undecidable               the file defines names the query cannot see
; Definitions are visible in the whole of their scope, in any order: Python makes a name assigned
; anywhere in a function local to all of it, and module-level names visible from every function.

; ---- scopes
(function_definition) @local.scope.function
(lambda) @local.scope.function
(class_definition) @local.scope.class
[
  (list_comprehension)
  (set_comprehension)
  (dictionary_comprehension)
  (generator_expression)
] @local.scope

(function_definition parameters: (parameters) @local.header)
(function_definition return_type: (_) @local.header)

; ---- definitions
(function_definition name: (identifier) @local.definition.outer)
(class_definition name: (identifier) @local.definition.outer)

; parameters (defaults and annotations are references)
(parameters (identifier) @local.definition)
(lambda_parameters (identifier) @local.definition)
(typed_parameter . (identifier) @local.definition)
(default_parameter name: (identifier) @local.definition)
(typed_default_parameter name: (identifier) @local.definition)
(list_splat_pattern (identifier) @local.definition)
(dictionary_splat_pattern (identifier) @local.definition)

; PEP 695 type parameters: a function's in its own scope; a class's or an alias's where the class
; or alias is (methods see them, a class scope would hide them)
(function_definition
  type_parameters: (type_parameter (type (identifier) @local.definition)))
(class_definition
  type_parameters: (type_parameter (type (identifier) @local.definition.outer)))
(type_alias_statement
  left: (type (identifier) @local.definition))
(type_alias_statement
  left: (type (generic_type (identifier) @local.definition
                            (type_parameter (type (identifier) @local.definition)))))

; assignment targets, plain and unpacked (the left side of `x += 1` reads x first: a reference)
(assignment left: (identifier) @local.definition)
(pattern_list (identifier) @local.definition)
(tuple_pattern (identifier) @local.definition)
(list_pattern (identifier) @local.definition)
(for_statement left: (identifier) @local.definition)
(for_in_clause left: (identifier) @local.definition)
(as_pattern_target (identifier) @local.definition)
(as_pattern_target (tuple (identifier) @local.definition))
(as_pattern_target (list (identifier) @local.definition))
(named_expression name: (identifier) @local.definition.hoisted)

(global_statement (identifier) @local.definition.global)
(nonlocal_statement (identifier) @local.definition)

; imports: `import a.b` defines a; `import a.b as c` and `from m import y as c` define c
(import_statement name: (dotted_name . (identifier) @local.definition))
(import_from_statement name: (dotted_name . (identifier) @local.definition))
(future_import_statement name: (dotted_name . (identifier) @local.definition))
(aliased_import alias: (identifier) @local.definition)
(import_from_statement module_name: (dotted_name (identifier) @local.ignore))
(relative_import (dotted_name (identifier) @local.ignore))
(aliased_import name: (dotted_name (identifier) @local.ignore))
(import_statement name: (dotted_name (identifier) @local.ignore))
(import_from_statement name: (dotted_name (identifier) @local.ignore))
(future_import_statement name: (dotted_name (identifier) @local.ignore))

; match captures: a bare name is a capture; a dotted one (`mod.CONST`) and a class name are values
(case_pattern (dotted_name . (identifier) @local.definition .))
(case_pattern (as_pattern (identifier) @local.definition))
(splat_pattern (identifier) @local.definition)
(keyword_pattern . (identifier) @local.ignore)
(keyword_pattern (dotted_name . (identifier) @local.definition .))

; ---- references: every identifier that is none of the above
(identifier) @local.reference
(attribute attribute: (identifier) @local.ignore)
(keyword_argument name: (identifier) @local.ignore)
(dotted_name (identifier) (identifier) @local.ignore)

; ---- files whose names the query cannot see
(wildcard_import) @local.undecidable
(call function: (identifier) @_fn (#eq? @_fn "exec")) @local.undecidable
(assignment
  left: (subscript value: (call function: (identifier) @_fn (#eq? @_fn "globals")))) @local.undecidable
(call
  function: (attribute
    object: (call function: (identifier) @_fn (#eq? @_fn "globals"))
    attribute: (identifier) @_method (#any-of? @_method "update" "setdefault" "__setitem__"))) @local.undecidable

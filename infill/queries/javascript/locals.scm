; inherits: ecma,jsx
; JavaScript: the shared ECMAScript facts and JSX (queries/ecma, queries/jsx).
(formal_parameters (identifier) @local.definition)

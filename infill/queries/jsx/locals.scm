; JSX element names in lower case are intrinsic elements (`<div>`), not names; `<Foo>` reads Foo.
(jsx_opening_element name: (identifier) @local.ignore (#match? @local.ignore "^[a-z]"))
(jsx_closing_element name: (identifier) @local.ignore (#match? @local.ignore "^[a-z]"))
(jsx_self_closing_element name: (identifier) @local.ignore (#match? @local.ignore "^[a-z]"))

; Span selection captures (one naming scheme across languages, see infill/spans.py):
; @block body of a compound statement, @args bracketed argument/parameter list,
; @statement a whole statement, @expression an expression, @string / @comment literal text.

[(statement_block) (class_body) (switch_body)] @block

[(arguments) (formal_parameters)] @args

[(statement) (method_definition) (field_definition)] @statement

(expression) @expression

[(string) (template_string) (regex)] @string

[(comment) (html_comment)] @comment

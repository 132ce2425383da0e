; inherits: typescript,jsx
; TSX: TypeScript with JSX (queries/typescript, queries/jsx).

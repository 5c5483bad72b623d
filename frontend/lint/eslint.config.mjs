// eslint for frontend/src: JavaScript's recommended rules and typescript-eslint's recommended
// type-checked ones (unsafe `any`, floating promises, unused values), with the types of
// ../tsconfig.json. Run from frontend/: lint/node_modules/.bin/eslint --config lint/eslint.config.mjs src
// (`cd frontend/lint && npm ci && npm run lint` does; so does scripts/gates.sh).
import path from "node:path";
import { fileURLToPath } from "node:url";

import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

const frontend = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

export default defineConfig({
  files: ["src/**/*.ts"],
  extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
  languageOptions: {
    parserOptions: { project: path.join(frontend, "tsconfig.json"), tsconfigRootDir: frontend },
  },
  rules: {
    // `_name` marks a parameter kept for a signature (a callback's, an interface's).
    "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
  },
});

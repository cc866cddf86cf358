// Lint rules: the recommended sets, plus the habits of docs/style.md that a linter can see.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import layers from './eslint-rules/layers.js';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      'no-console': ['error', { allow: ['warn', 'error'] }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-sequences': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // Imports in src/ run down the layers and never in a circle; the core imports no Node
    // built-in. The layer map and the choices made are in eslint-rules/layers.js.
    files: ['src/**/*.ts'],
    plugins: { layers },
    rules: {
      'layers/direction': 'error',
      'layers/no-cycle': 'error',
    },
  },
  {
    files: ['src/cli/**/*.ts', 'test/**/*.ts', 'scripts/**/*.mjs'],
    rules: { 'no-console': 'off' },
  },
  {
    // The examples are programs a user runs: printing is their output.
    files: ['examples/**/*.mjs'],
    rules: { 'no-console': 'off' },
    languageOptions: {
      globals: {
        console: 'readonly',
        URL: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        SharedArrayBuffer: 'readonly',
        setTimeout: 'readonly',
      },
    },
  },
  {
    files: ['scripts/**/*.mjs', 'eslint.config.js', 'eslint-rules/**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        performance: 'readonly',
      },
    },
  },
);

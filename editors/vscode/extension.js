// The ruledeck extension: starts `ruledeck lsp` and connects VS Code to it. Plain JavaScript
// (CommonJS) so the extension needs no compile step: it is this one file, and every feature
// lives in the server.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("ruledeck");
  const command = config.get("server.path") || "ruledeck";
  const server = { command, args: ["lsp"], transport: TransportKind.stdio };
  client = new LanguageClient(
    "ruledeck",
    "ruledeck",
    { run: server, debug: server },
    {
      documentSelector: [{ scheme: "file", language: "ruledeck" }, { scheme: "untitled", language: "ruledeck" }],
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.rule") },
    },
  );
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("ruledeck.server.path")) {
        vscode.window.showInformationMessage("ruledeck: reload the window to use the new server path.");
      }
    }),
  );
  return client.start().catch((err) => {
    vscode.window.showErrorMessage(
      `ruledeck: cannot start \`${command} lsp\` (${err.message}). Install ruledeck or set "ruledeck.server.path".`,
    );
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };

// mtrelay: one CLI, a subcommand per role. Run from a checkout as ./bin/mtrelay <role> …
// First, before anything loads kafkajs: its patches must be in place before its requests load.
import './shared/kafka/kafkajs-patches.ts';
import { Command } from 'commander';
import { apiCommand } from './api/command.ts';
import { delivererCommand } from './deliverer/command.ts';
import { dispatcherCommand } from './dispatcher/command.ts';
import { eventsCommand } from './api/events-command.ts';
import { inboundCommand } from './inbound/command.ts';
import { operatorCommand } from './operator/command.ts';
import { relayCommand } from './relay/command.ts';
import { standaloneCommand } from './standalone/command.ts';
import { trackerCommand } from './tracker/command.ts';

// kafkajs schedules a timer with a negative delay on every connection (harmless, it runs at
// once); Node warns about it. node:sqlite is stable enough for us but still flagged
// experimental. Other warnings are printed as usual.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  const expected = warning.name === 'TimeoutNegativeWarning' || (warning.name === 'ExperimentalWarning' && /SQLite/.test(warning.message));
  if (!expected) process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

const program = new Command('mtrelay')
  .description('Kubernetes-native SMTP relay: submission, delivery, operator, tracking, webhooks, bounces and complaints, the API')
  .addCommand(relayCommand())
  .addCommand(delivererCommand())
  .addCommand(standaloneCommand())
  .addCommand(operatorCommand())
  .addCommand(trackerCommand())
  .addCommand(dispatcherCommand())
  .addCommand(inboundCommand())
  .addCommand(apiCommand())
  .addCommand(eventsCommand())
  .showHelpAfterError();

program.parseAsync(process.argv).catch((error: Error) => {
  process.stderr.write(`mtrelay: ${error.message}\n`);
  process.exit(1);
});

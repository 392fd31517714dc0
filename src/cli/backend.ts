/** `hat backend`: which compute backend runs would use. */
import { type Command, Option } from 'commander';
import { BACKEND_CHOICES, initBackend } from '../backend/index';

export function backendCommand(program: Command): void {
  program
    .command('backend')
    .description('initialise and describe the compute backend that runs would use')
    .addOption(
      new Option('--backend <name>', 'backend to try (default: $HAT_BACKEND or auto)').choices([...BACKEND_CHOICES]),
    )
    .action(async (o: { backend?: string }) => {
      console.log(JSON.stringify(await initBackend(o.backend), null, 2));
    });
}

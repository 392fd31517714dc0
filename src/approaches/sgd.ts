/** SGD: keep training the same network on each new task (spec §5). */
import { NetworkApproach } from './approach';

export class Sgd extends NetworkApproach {
  readonly id: string = 'sgd';
}

/** CIFAR-100 (spec §6.2 id 1), fine labels: binary records (coarse byte, fine byte, 3072 CHW) or the python version. */
import { type DatasetSource } from './common';
import { buildCifar } from './cifar10';

export const cifar100: DatasetSource = {
  name: 'cifar100',
  variants: [
    {
      id: 'binary',
      description: 'CIFAR-100, A. Krizhevsky 2009 (https://www.cs.toronto.edu/~kriz/cifar.html), binary version',
      files: [
        {
          name: 'cifar-100-binary.tar.gz',
          urls: ['https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz'],
          md5: '03b5dce01913d631647c71ecec9e9cb8',
          bytes: 168513733,
          checksumSource: 'md5 published on the CIFAR page',
        },
      ],
    },
    {
      id: 'python',
      description: 'CIFAR-100, A. Krizhevsky 2009 (https://www.cs.toronto.edu/~kriz/cifar.html), python version',
      files: [
        {
          name: 'cifar-100-python.tar.gz',
          urls: ['https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz'],
          md5: 'eb9058c3a382ffc7106e4002c42a8d85',
          checksumSource: 'md5 published on the CIFAR page',
        },
      ],
    },
  ],
  accepts:
    'cifar-100-binary.tar.gz or cifar-100-python.tar.gz, or the extracted cifar-100-binary/ or cifar-100-python/ folder',
  want: /cifar-100-(binary|python)\//,
  build: (inputs) => buildCifar(inputs, 'cifar100'),
};

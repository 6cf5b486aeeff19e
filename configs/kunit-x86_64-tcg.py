# kunit.py --qemu_config for x86_64 under TCG (KVM guests hang on these
# machines): "qemu-system-x86_64-tcg" is scripts/bin's wrapper that drops
# kunit.py's "-accel kvm"; qboot boots faster than SeaBIOS.
from ..qemu_config import QemuArchParams

QEMU_ARCH = QemuArchParams(linux_arch='x86_64',
			   kconfig='''
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y''',
			   qemu_arch='x86_64-tcg',
			   kernel_path='arch/x86/boot/bzImage',
			   kernel_command_line='console=ttyS0',
			   extra_qemu_params=['-bios', 'qboot.rom', '-smp', '2', '-m', '2048'])
